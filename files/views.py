"""REST endpoints for project files and the accli jobstore. Thin: authorise, validate, call one service."""

from __future__ import annotations

import posixpath

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator import streaming
from accelerator.api_errors import ErrorSerializer
from accelerator.errors import Conflict, InvalidInput, NotFound
from files import jobstore, services
from routines.permissions import READ, RUN, get_project

MISSING_MAX = 100_000


class AnyContent(BaseContentNegotiation):
    """Accept any request body and any Accept header: files are raw bytes, errors and listings JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _raw_body(request):
    """The request's raw byte stream, read in chunks by the service, which enforces the size limit.

    Served by `manage.py serve_web`, the body is not read before this view
    runs (accelerator/upload_guard.py), so a refused upload is answered
    before its body arrives. DRF's `request.stream` is None without a
    Content-Length (chunked uploads), so the underlying Django request is
    used; `request.body` and `request.data` would load everything in memory.
    """
    return request._request


class ProjectFilesView(APIView):
    """GET lists a folder or downloads a file; PUT stores the raw body; DELETE removes a file or folder."""

    content_negotiation_class = AnyContent

    @extend_schema(
        summary="List a folder (JSON) or download a file (attachment)",
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "application/octet-stream"): bytes},
    )
    def get(self, request, slug: str, path: str = ""):
        project = get_project(request.user, slug, READ)
        relpath = services.clean_relpath(path)
        kind = services.path_kind(project=project, relpath=relpath)
        if kind is None:
            raise NotFound(f"'{relpath}' does not exist in project '{slug}'.")
        if kind == "folder":
            return Response(services.list_folder(project=project, relpath=relpath))
        handle = services.open_file(project=project, relpath=relpath)
        response = FileResponse(handle, as_attachment=True, filename=posixpath.basename(relpath))
        response.streaming_content = streaming.body(request, streaming.file_pieces(handle))
        return response

    @extend_schema(
        summary="Store the raw request body at path",
        request={"application/octet-stream": bytes},
        responses={201: OpenApiTypes.OBJECT},
    )
    def put(self, request, slug: str, path: str = ""):
        project = get_project(request.user, slug, RUN)
        stored = services.write_file(project=project, relpath=path, stream=_raw_body(request))
        return Response(stored, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Delete a file, or a folder recursively", responses={204: None})
    def delete(self, request, slug: str, path: str = ""):
        project = get_project(request.user, slug, RUN)
        services.delete_path(project=project, relpath=path)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobstorePushUrlView(APIView):
    """accli asks where to PUT one jobstore object: a signed URL of JobstoreUploadView, or 409 if present."""

    @extend_schema(
        summary="Signed URL to PUT one jobstore object to (accli)",
        parameters=[OpenApiParameter("filename", str, required=True, description="cas_<sha1>.blob etc.")],
        responses={200: OpenApiTypes.URI, 409: ErrorSerializer},
    )
    def get(self, request, slug: str):
        project = get_project(request.user, slug, RUN)
        filename = request.query_params.get("filename", "")
        jobstore.parse_filename(filename)
        if jobstore.exists(project=project, filename=filename):
            raise Conflict("already in the jobstore", code="exists")
        token = jobstore.make_upload_token(project=project, filename=filename)
        return Response(request.build_absolute_uri(reverse("files-jobstore-upload", args=[token])))


class JobstoreUploadView(APIView):
    """PUT of one jobstore object. accli sends no credentials: the signed token is the authorisation."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    content_negotiation_class = AnyContent

    @extend_schema(
        summary="Upload one jobstore object (authorised by the signed token)",
        auth=[],
        request={"application/octet-stream": bytes},
        responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def put(self, request, token: str):
        project, filename = jobstore.check_upload_token(token)
        created = jobstore.put(project=project, filename=filename, stream=_raw_body(request))
        return Response(
            {"filename": filename, "created": created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class JobstoreMissingView(APIView):
    """Which of a folder's objects the project's jobstore lacks, so the browser uploads only those."""

    @extend_schema(
        summary="Which jobstore objects are not stored yet (the web client's folder upload)",
        request={"application/json": {"type": "object", "properties": {"filenames": {"type": "array"}}}},
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, slug: str):
        project = get_project(request.user, slug, RUN)
        filenames = request.data.get("filenames") if isinstance(request.data, dict) else None
        if (
            not isinstance(filenames, list)
            or len(filenames) > MISSING_MAX
            or not all(isinstance(f, str) for f in filenames)
        ):
            raise InvalidInput(f'Send {{"filenames": [...]}}: a list of at most {MISSING_MAX} jobstore filenames.')
        for filename in filenames:
            jobstore.parse_filename(filename)
        missing = [f for f in dict.fromkeys(filenames) if not jobstore.exists(project=project, filename=f)]
        return Response({"missing": missing})
