"""The REST API of a job's interactive session: read it, stop it, extend it."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from interactive import services
from interactive.serializers import SessionExtendSerializer
from jobs.permissions import readable_job


class JobSessionView(APIView):
    """GET the interactive session of a job: its URL, state and end time."""

    @extend_schema(responses=dict, summary="The job's interactive session (conf interactive_socket)")
    def get(self, request, pk):
        job = readable_job(request.user, pk)
        session = services.session_of(job)
        return Response(services.describe(session, job))


class JobSessionStopView(APIView):
    @extend_schema(request=None, responses={202: dict}, summary="End the interactive session now")
    def post(self, request, pk):
        job = readable_job(request.user, pk)
        services.session_of(job)
        services.stop_session(job=job, user=request.user)
        job.refresh_from_db()
        session = services.session_of(job)
        return Response(services.describe(session, job), status=202)


class JobSessionExtendView(APIView):
    @extend_schema(
        request=SessionExtendSerializer, responses=dict, summary="Push the session's end by `seconds`, within the limit"
    )
    def post(self, request, pk):
        job = readable_job(request.user, pk)
        services.session_of(job)
        data = SessionExtendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        seconds = data.validated_data.get("seconds")
        session = services.extend_session(job=job, user=request.user, seconds=seconds)
        return Response(services.describe(session, job))
