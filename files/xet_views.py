"""The Xet CAS API under /api/xet-cas/ (what hf_xet, inside `accli copy`, calls) and accli's file listing calls.

Thin: authorise from the Xet token (its project, the caller's role there),
refuse by the headers before reading a body, call one service.
"""

from __future__ import annotations

import base64
import binascii

from django.core import signing
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator import streaming
from accelerator.api_errors import ErrorSerializer
from accelerator.errors import Forbidden, InvalidInput
from accounts.authentication import CasTokenAuthentication
from files import storage, xet_cas, xet_files
from files.models import Xorb
from files.views import AnyContent, _raw_body
from routines.permissions import READ, RUN, get_project

FETCH_SALT = "files.xet.fetch"
FETCH_LIFETIME = 3600  # seconds a reconstruction's URLs stay good; hf_xet asks again after that
XORB_PREFIX = "default"
DEDUPE_PREFIXES = ("default", "default-merkledb")  # hf_xet 1.5.2 asks under "default"; the spec names the other
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


def _length(request) -> int | None:
    value = request.META.get("CONTENT_LENGTH") or ""
    return int(value) if value.isdigit() else None


class CasView(APIView):
    """Base: the caller is the user of the Xet token; the project is the token's."""

    authentication_classes = [CasTokenAuthentication]
    content_negotiation_class = AnyContent

    def project(self, request, needed: str):
        return get_project(request.user, request.auth.project_slug, needed)


class DedupeView(CasView):
    @extend_schema(
        summary="Global dedupe: a shard describing this project's xorbs that hold a chunk",
        responses={(200, "application/octet-stream"): bytes, **ERRORS},
    )
    def get(self, request, prefix: str, chunk: str):
        project = self.project(request, READ)
        if prefix not in DEDUPE_PREFIXES:
            raise InvalidInput(f"The dedupe prefix is 'default' or 'default-merkledb', not {prefix[:40]!r}.")
        body = xet_cas.dedupe_answer(project=project, chunk_hex=chunk)
        return HttpResponse(body, content_type="application/octet-stream")


class XorbView(CasView):
    @extend_schema(
        summary="Upload one serialized xorb (verified against its hash before it is stored)",
        request={"application/octet-stream": bytes},
        responses={
            200: inline_serializer("XorbUploaded", {"was_inserted": serializers.BooleanField()}),
            413: ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request, prefix: str, xorb: str):
        project = self.project(request, RUN)
        if prefix != XORB_PREFIX:
            raise InvalidInput(f"The xorb prefix is '{XORB_PREFIX}', not {prefix[:40]!r}.")
        new = xet_cas.put_xorb(project=project, hex_hash=xorb, stream=_raw_body(request), length=_length(request))
        return Response({"was_inserted": new})


class ShardView(CasView):
    @extend_schema(
        summary="Upload a shard: the uploaded files' reconstructions (checked against the project's xorbs)",
        request={"application/octet-stream": bytes},
        responses={
            200: inline_serializer("ShardUploaded", {"result": serializers.IntegerField()}),
            413: ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request):
        project = self.project(request, RUN)
        return Response(
            {"result": xet_cas.put_shard(project=project, stream=_raw_body(request), length=_length(request))}
        )


class ReconstructionView(CasView):
    @extend_schema(
        summary="How to rebuild a file of this project: terms and signed URLs of xorb byte ranges",
        parameters=[OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False)],
        responses={200: OpenApiTypes.OBJECT, 416: ErrorSerializer, **ERRORS},
    )
    def get(self, request, file_id: str):
        project = self.project(request, READ)
        byte_range = xet_cas.parse_range(request.META.get("HTTP_RANGE"))

        def url_for(xorb_hash: str, first: int, last: int) -> str:
            direct = storage.signed_url(xet_cas.xorb_name(xorb_hash), expire=FETCH_LIFETIME)
            if direct:
                return direct
            token = signing.dumps([xorb_hash, first, last], salt=FETCH_SALT, compress=True)
            return request.build_absolute_uri(reverse("xet-fetch", args=[token]))

        body = xet_cas.reconstruction(project=project, file_hex=file_id, byte_range=byte_range, url_for=url_for)
        return Response(body)


class ReconstructionV2View(CasView):
    @extend_schema(summary="Not offered: clients fall back to v1", responses={501: ErrorSerializer, **ERRORS})
    def get(self, request, file_id: str):
        self.project(request, READ)
        detail = "Only the v1 reconstruction API is offered here; ask /v1/reconstructions/."
        return Response({"detail": detail, "code": "not_implemented"}, status=status.HTTP_501_NOT_IMPLEMENTED)


class FetchView(APIView):
    """A byte range of a stored xorb. No credentials: the URL is signed for one range and an hour."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    content_negotiation_class = AnyContent

    @extend_schema(
        summary="Bytes of a xorb, from a URL a reconstruction signed",
        auth=[],
        parameters=[OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False)],
        responses={
            (206, "application/octet-stream"): bytes,
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request, token: str):
        try:
            xorb_hash, first, last = signing.loads(token, salt=FETCH_SALT, max_age=FETCH_LIFETIME)
        except signing.BadSignature:
            raise Forbidden(
                "This download URL is not valid or has expired; ask for the reconstruction again."
            ) from None
        asked = xet_cas.parse_range(request.META.get("HTTP_RANGE"))
        if asked is not None:
            if asked[0] < first or asked[1] - 1 > last:
                raise Forbidden(f"This URL is signed for bytes {first}-{last} only.")
            first, last = asked[0], asked[1] - 1
        total = Xorb.objects.filter(hash=xorb_hash).values_list("stored_bytes", flat=True).first()
        response = StreamingHttpResponse(
            streaming.body(request, xet_cas.xorb_bytes(hex_hash=xorb_hash, first=first, last=last)),
            status=status.HTTP_206_PARTIAL_CONTENT,
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(last - first + 1)
        response["Content-Range"] = f"bytes {first}-{last}/{total if total is not None else '*'}"
        return response


class BulkRegisterView(CasView):
    @extend_schema(
        summary="Name uploaded files: each is rebuilt, checked (SHA-256) and stored at its path; all or none",
        request=inline_serializer("XetRegister", {"items": serializers.ListField(child=serializers.DictField())}),
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request):
        project = self.project(request, RUN)
        header = request.META.get("HTTP_X_PROJECT_SLUG")
        if header is not None and header != project.slug:
            raise InvalidInput(f"X-Project-Slug {header[:80]!r} is not the project of the Xet token ({project.slug}).")
        items = request.data.get("items") if isinstance(request.data, dict) else None
        return Response({"registered": xet_files.register(project=project, items=items)})


# --- accli's listing calls under /api/v1/aterm-cli/<slug>/ (access token in x-authorization) ----------------


def _no_token_pass(request) -> None:
    if request.query_params.get("token_pass"):
        raise InvalidInput("Token passes are not offered here; sign in with `accli login` and copy as a member.")


class EnumerateFilesView(APIView):
    @extend_schema(
        summary="The files below a prefix `<slug>/<path>` (base64), as `<slug>/<path>` names (accli copy)",
        parameters=[OpenApiParameter("token_pass", str, required=False)],
        responses={200: {"type": "array", "items": {"type": "string"}}, **ERRORS},
    )
    def get(self, request, slug: str, encoded: str):
        project = get_project(request.user, slug, READ)
        _no_token_pass(request)
        try:
            prefix = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput("The prefix must be base64 of a UTF-8 path like '<slug>/data/'.") from None
        return Response(xet_files.enumerate_files(project=project, prefix=prefix))


class FileStatView(APIView):
    @extend_schema(
        summary="Size, SHA-256 and Xet hash of one project file (prepared for Xet download on first ask)",
        request=inline_serializer("FileStatRequest", {"filename": serializers.CharField()}),
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request, slug: str):
        project = get_project(request.user, slug, READ)
        filename = request.data.get("filename") if isinstance(request.data, dict) else None
        if not isinstance(filename, str):
            raise InvalidInput('Send {"filename": "/path/in/the/project"}.')
        return Response(xet_files.stat(project=project, filename=filename))
