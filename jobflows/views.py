"""The saved jobflow API: list, create, read, edit, run, export. Thin: authorise, validate, call jobflows.saved."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from jobflows import saved
from jobflows.serializers import (
    JobflowRunSerializer,
    JobflowSerializer,
    JobflowVersionSerializer,
    JobflowWriteSerializer,
)
from routines import permissions

# not "format": DRF reads that query parameter to choose a renderer
FORMAT = OpenApiParameter(
    "as",
    str,
    enum=["json", "wkube"],
    required=True,
    description="json: the acc-dag/1 body `acc dispatch` sends; wkube: a wkube.py for `acc dispatch`.",
)


def _related(queryset):
    return queryset.select_related("project", "latest_version", "created_by")


class JobflowListView(APIView):
    @extend_schema(responses=JobflowSerializer(many=True))
    def get(self, request, slug):
        project = permissions.get_project(request.user, slug)
        return Response(JobflowSerializer(_related(project.jobflows.all()), many=True).data)

    @extend_schema(request=JobflowWriteSerializer, responses={201: JobflowSerializer})
    def post(self, request, slug):
        project = permissions.get_project(request.user, slug)
        data = JobflowWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        jobflow, _, _ = saved.save_jobflow(project=project, user=request.user, **data.validated_data)
        return Response(JobflowSerializer(jobflow).data, status=201)


class JobflowDetailView(APIView):
    @extend_schema(responses=JobflowSerializer)
    def get(self, request, pk):
        return Response(JobflowSerializer(saved.readable_jobflow(request.user, pk)).data)

    @extend_schema(request=JobflowWriteSerializer, responses=JobflowSerializer)
    def put(self, request, pk):
        """A changed definition becomes a new version; an unchanged one records nothing."""
        jobflow = saved.readable_jobflow(request.user, pk)
        data = JobflowWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        jobflow, _, _ = saved.save_jobflow(
            project=jobflow.project, user=request.user, jobflow=jobflow, **data.validated_data
        )
        return Response(JobflowSerializer(jobflow).data)


class JobflowVersionListView(APIView):
    @extend_schema(responses=JobflowVersionSerializer(many=True))
    def get(self, request, pk):
        jobflow = saved.readable_jobflow(request.user, pk)
        return Response(JobflowVersionSerializer(jobflow.versions.select_related("created_by"), many=True).data)


class JobflowRunView(APIView):
    @extend_schema(request=None, responses={201: JobflowRunSerializer})
    def post(self, request, pk):
        """Run the latest version; every node runs the routine version it pins."""
        jobflow = saved.readable_jobflow(request.user, pk)
        root = saved.run_jobflow(jobflow=jobflow, user=request.user)
        return Response({"job_id": root.pk, "version": jobflow.latest_version.number}, status=201)


class JobflowExportView(APIView):
    @extend_schema(
        parameters=[FORMAT],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="acc-dag/1 JSON"),
            (200, "text/x-python"): OpenApiResponse(OpenApiTypes.STR, description="wkube.py"),
        },
    )
    def get(self, request, pk):
        jobflow = saved.readable_jobflow(request.user, pk)
        name, text = saved.export_jobflow(jobflow=jobflow, user=request.user, fmt=request.query_params.get("as"))
        kind = "application/json" if name.endswith(".json") else "text/x-python"
        response = HttpResponse(text, content_type=f"{kind}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
