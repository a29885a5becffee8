import django_filters
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator.errors import InvalidInput, NotFound
from routines import permissions
from workers import interactive, jobdir, services
from workers.models import Job, LogChunk
from workers.serializers import JobDetailSerializer, JobSerializer
from workers.states import FINAL, Status


class JobFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    routine = django_filters.NumberFilter(field_name="routine_version__routine_id")
    user = django_filters.CharFilter(field_name="user__username")
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Job
        fields = ["project", "routine", "user", "status"]


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
        responses=dict,
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
    @extend_schema(request=None, responses=JobSerializer)
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
    @extend_schema(request=None, responses=dict, summary="End the interactive session now")
    def post(self, request, pk):
        job = job_for(request.user, pk)
        interactive.session_of(job)
        interactive.stop_session(job=job, user=request.user)
        job.refresh_from_db()
        session = interactive.session_of(job)
        return Response(interactive.describe(session, job), status=202)


class JobSessionExtendView(APIView):
    @extend_schema(request=dict, responses=dict, summary="Push the session's end by `seconds`, within the limit")
    def post(self, request, pk):
        job = job_for(request.user, pk)
        interactive.session_of(job)
        seconds = request.data.get("seconds")
        session = interactive.extend_session(job=job, user=request.user, seconds=seconds)
        return Response(interactive.describe(session, job))
