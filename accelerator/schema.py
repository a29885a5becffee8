"""OpenAPI generation (drf-spectacular): every operation also documents the errors it can answer.

Views declare their successful answers with @extend_schema; the error answers follow from what the view is,
so they are added here once instead of on every view. Each is the {"detail", "code"} body of
accelerator.api_errors:

- 400 when the operation takes input (parameters or a body) or writes;
- 401 and 403 unless the view is open to anyone (AllowAny);
- 404 when its path or its body names something (a project, a job, a file ...);
- 409 for writes (something with that name exists, a state that forbids it);
- 413 and 415 when it reads a JSON body (bigger than DATA_UPLOAD_MAX_MEMORY_SIZE; not JSON);
- 429 when the view is throttled.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework.permissions import AllowAny

from accelerator.api_errors import ErrorSerializer

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
WHY = {
    "400": "The request is not valid; `detail` says what to change.",
    "401": "No valid credentials: an access token in x-authorization (or a signed-in session).",
    "403": "Signed in, but not allowed to do this.",
    "404": "Not found, or not visible to you.",
    "409": "Conflicts with the current state (e.g. the name is taken).",
    "413": "The request body is too large.",
    "415": "The body must be JSON (Content-Type: application/json).",
    "429": "Too many requests; wait the seconds given in Retry-After.",
}


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation.setdefault("responses", {})
        for code in self._error_codes(operation):
            responses.setdefault(code, {"content": {"application/json": {"schema": error}}, "description": WHY[code]})
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_codes(self, operation) -> list[str]:
        codes = []
        body = operation.get("requestBody", {}).get("content", {})
        if operation.get("parameters") or body or self.method in WRITES:
            codes.append("400")
        if not self._is_public():
            codes += ["401", "403"]
        if "{" in self.path or body:
            codes.append("404")
        if self.method in WRITES:
            codes.append("409")
        if "application/json" in body:
            codes += ["413", "415"]
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def _is_public(self) -> bool:
        permissions = self.view.get_permissions()
        return bool(permissions) and all(isinstance(p, AllowAny) for p in permissions)
