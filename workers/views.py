"""The REST API of jobs: list, detail, logs, why, directory, cancel; and launching: run, dispatch, retry."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator import streaming
from accelerator.errors import InvalidInput, NotFound
from builds import why
from jobflows import services as flow_services
from jobs import permissions as job_permissions
from jobs.models import LogChunk
from jobs.permissions import readable_job
from jobs.states import FINAL
from routines import permissions
from routines.serializers import RunSerializer
from workers import dispatch, jobdir, services
from workers.filters import JobFilter
from workers.serializers import JobDetailSerializer, JobLogsSerializer, JobSerializer


class JobListView(ListAPIView):
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self):
        return job_permissions.visible_jobs(self.request.user).select_related("project", "user", "routine_version")


class JobDetailView(APIView):
    @extend_schema(responses=JobDetailSerializer)
    def get(self, request, pk):
        job = readable_job(request.user, pk)
        return Response(JobDetailSerializer(job).data)


class JobLogsView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("after_seq", int, description="Only chunks after this sequence number.")],
        responses=JobLogsSerializer,
    )
    def get(self, request, pk):
        job = readable_job(request.user, pk)
        raw = request.query_params.get("after_seq", "0")
        try:
            after = int(raw)
        except ValueError:
            raise InvalidInput(f"after_seq must be an integer, got {raw!r}.") from None
        limit = 500
        chunks = list(LogChunk.objects.filter(job=job, seq__gt=after).order_by("seq").values("seq", "text")[:limit])
        last = chunks[-1]["seq"] if chunks else after
        return Response(
            {
                "job_id": job.pk,
                "status": job.status,
                "chunks": chunks,
                "last_seq": last,
                "complete": job.status in FINAL and len(chunks) < limit,
            }
        )


class JobWhyView(APIView):
    @extend_schema(responses=dict, summary="Why a job was or was not answered from the build-system cache")
    def get(self, request, pk):
        job = readable_job(request.user, pk)
        return Response(why.explain(job, request.user))


class JobDirectoryView(APIView):
    @extend_schema(responses={(200, "application/zip"): bytes}, summary="The job directory as one zip archive")
    def get(self, request, pk):
        job = readable_job(request.user, pk)
        archive = jobdir.archive(job, request.user)
        response = FileResponse(archive, as_attachment=True, filename=f"job-{job.pk}.zip")
        response.streaming_content = streaming.body(request, streaming.file_pieces(archive))
        return response


class JobCancelView(APIView):
    @extend_schema(request=None, responses={200: JobSerializer, 202: JobSerializer})
    def post(self, request, pk):
        job = readable_job(request.user, pk)
        job = services.cancel_job(job=job, user=request.user)
        return Response(JobSerializer(job).data, status=202 if job.status not in FINAL else 200)


class RoutineRunView(APIView):
    @extend_schema(request=RunSerializer, responses={201: JobSerializer})
    def post(self, request, pk):
        routine = permissions.readable_routine(request.user, pk)
        data = RunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = None
        if data.validated_data.get("version"):
            version = routine.versions.filter(number=data.validated_data["version"]).first()
            if version is None:
                raise NotFound(f"Routine {routine.pk} has no version {data.validated_data['version']}.")
        job = dispatch.run_routine(
            routine=routine,
            user=request.user,
            conf=data.validated_data["conf"],
            secrets=data.validated_data["secrets"],
            version=version,
            force_build=data.validated_data["force_build"],
        )
        return Response(JobSerializer(job).data, status=201)


class DispatchView(APIView):
    """POST /api/v1/aterm-cli/<slug>/jobs/dispatch/ as `accli dispatch` calls it."""

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: inline_serializer("DispatchedJob", {"job_id": drf_serializers.IntegerField()})},
        summary="Dispatch an accli task tree or an acc-dag/1 jobflow",
    )
    def post(self, request, slug):
        project = permissions.get_project(request.user, slug)
        job = dispatch.dispatch_task_tree(project=project, user=request.user, tree=request.data)
        return Response({"job_id": job.pk})


class RetryView(APIView):
    """POST /api/v1/jobs/<root_id>/retry/: re-run only the nodes that failed, were cancelled or skipped."""

    @extend_schema(request=None, responses={202: JobDetailSerializer})
    def post(self, request, pk):
        root = flow_services.retry_flow(root=readable_job(request.user, pk), user=request.user)
        return Response(JobDetailSerializer(root).data, status=202)
