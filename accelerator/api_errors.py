"""One DRF exception handler: every error leaves as {"detail": ..., "code": ...}."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from accelerator import errors

log = logging.getLogger(__name__)

_STATUS = {
    errors.InvalidInput: status.HTTP_400_BAD_REQUEST,
    errors.TooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,  # looked up by its own type first
    errors.RangeNotSatisfiable: status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Forbidden: status.HTTP_403_FORBIDDEN,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.AuthFailed: status.HTTP_401_UNAUTHORIZED,
}


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer: what is wrong and how to fix it, and a short machine-readable code."""

    detail = serializers.CharField(help_text="What is wrong and how to fix it, in one or a few sentences.")
    code = serializers.CharField(help_text="A short machine-readable reason, e.g. invalid, not_found, conflict.")
    errors = serializers.JSONField(required=False, help_text="For code `invalid`: the messages per field.")


def _flatten(detail, prefix: str = "") -> list[str]:
    """Turn DRF's nested validation errors into 'field: message' sentences."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            out.extend(_flatten(value, f"{name}." if name else ""))
        return out
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item, prefix)]
    label = prefix.rstrip(".")
    return [f"{label}: {detail}" if label else str(detail)]


def exception_handler(exc, context):
    if isinstance(exc, errors.DomainError):
        code = _STATUS.get(type(exc)) or next(
            (s for cls, s in _STATUS.items() if isinstance(exc, cls)), status.HTTP_400_BAD_REQUEST
        )
        return Response({"detail": exc.detail, "code": exc.code}, status=code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        messages = _flatten(exc.detail)
        response.data = {"detail": "; ".join(messages), "code": "invalid", "errors": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else "; ".join(_flatten(exc.detail))
        response.data = {"detail": str(detail), "code": getattr(exc, "default_code", "error")}
    return response


def page_not_found(request, exception):
    """Django's 404 (handler404): JSON under /api/, where clients read {"detail", "code"}; the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        detail = f"No API endpoint matches {request.path[:200]}; the endpoints are listed at /api/docs/."
        return JsonResponse({"detail": detail, "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)
