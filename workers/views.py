from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator.errors import InvalidInput, NotFound
from routines import permissions
from workers import interactive, jobdir, services
from workers.filters import JobFilter
from workers.models import Job, LogChunk
from workers.serializers import JobDetailSerializer, JobLogsSerializer, JobSerializer, SessionExtendSerializer
from workers.states import FINAL


def job_for(user, pk) -> Job:
    job = get_object_or_404(Job.objects.select_related("project", "user", "routine_version", "reused_from"), pk=pk)
    if not permissions.can_read_job(user, job):
        raise NotFound("Job not found, or you have no access to it.")
    return job


class JobListView(ListAPIView):
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self):
        return permissions.visible_jobs(self.request.user).select_related("project", "user", "routine_version")


class JobDetailView(APIView):
    @extend_schema(responses=JobDetailSerializer)
    def get(self, request, pk):
        job = job_for(request.user, pk)
        return Response(JobDetailSerializer(job).data)


class JobLogsView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("after_seq", int, description="Only chunks after this sequence number.")],
        responses=JobLogsSerializer,
    )
    def get(self, request, pk):
        job = job_for(request.user, pk)
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
        job = job_for(request.user, pk)
        return Response(jobdir.explain(job, request.user))


class JobDirectoryView(APIView):
    @extend_schema(responses={(200, "application/zip"): bytes}, summary="The job directory as one zip archive")
    def get(self, request, pk):
        job = job_for(request.user, pk)
        return FileResponse(jobdir.archive(job, request.user), as_attachment=True, filename=f"job-{job.pk}.zip")


class JobCancelView(APIView):
    @extend_schema(request=None, responses={200: JobSerializer, 202: JobSerializer})
    def post(self, request, pk):
        job = job_for(request.user, pk)
        job = services.cancel_job(job=job, user=request.user)
        return Response(JobSerializer(job).data, status=202 if job.status not in FINAL else 200)


class JobSessionView(APIView):
    """GET the interactive session of a job: its URL, state and end time."""

    @extend_schema(responses=dict, summary="The job's interactive session (conf interactive_socket)")
    def get(self, request, pk):
        job = job_for(request.user, pk)
        session = interactive.session_of(job)
        return Response(interactive.describe(session, job))


class JobSessionStopView(APIView):
    @extend_schema(request=None, responses={202: dict}, summary="End the interactive session now")
    def post(self, request, pk):
        job = job_for(request.user, pk)
        interactive.session_of(job)
        interactive.stop_session(job=job, user=request.user)
        job.refresh_from_db()
        session = interactive.session_of(job)
        return Response(interactive.describe(session, job), status=202)


class JobSessionExtendView(APIView):
    @extend_schema(
        request=SessionExtendSerializer, responses=dict, summary="Push the session's end by `seconds`, within the limit"
    )
    def post(self, request, pk):
        job = job_for(request.user, pk)
        interactive.session_of(job)
        data = SessionExtendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        seconds = data.validated_data.get("seconds")
        session = interactive.extend_session(job=job, user=request.user, seconds=seconds)
        return Response(interactive.describe(session, job))
