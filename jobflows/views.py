from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from jobflows import services
from workers.serializers import JobDetailSerializer
from workers.views import job_for


class RetryView(APIView):
    """POST /api/v1/jobs/<root_id>/retry/: re-run only the nodes that failed, were cancelled or skipped."""

    @extend_schema(request=None, responses={202: JobDetailSerializer})
    def post(self, request, pk):
        root = services.retry_flow(root=job_for(request.user, pk), user=request.user)
        return Response(JobDetailSerializer(root).data, status=202)
