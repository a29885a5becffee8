from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator.errors import NotFound
from routines import permissions, services
from routines.models import Membership, Routine
from routines.serializers import (
    MembershipSerializer,
    MemberWriteSerializer,
    ProjectCreateSerializer,
    ProjectSerializer,
    RoleSerializer,
    RoutineSerializer,
    RoutineVersionSerializer,
    RoutineWriteSerializer,
    RunSerializer,
)
from workers.serializers import JobSerializer


class ProjectListView(APIView):
    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request):
        projects = permissions.visible_projects(request.user)
        return Response(ProjectSerializer(projects, many=True, context={"request": request}).data)

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        data = ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.create_project(user=request.user, **data.validated_data)
        return Response(ProjectSerializer(project, context={"request": request}).data, status=201)


class ProjectDetailView(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request, slug):
        project = permissions.get_project(request.user, slug)
        return Response(ProjectSerializer(project, context={"request": request}).data)


class MemberListView(APIView):
    @extend_schema(responses=MembershipSerializer(many=True))
    def get(self, request, slug):
        project = permissions.get_project(request.user, slug)
        members = Membership.objects.filter(project=project).select_related("user")
        return Response(MembershipSerializer(members, many=True).data)

    @extend_schema(request=MemberWriteSerializer, responses={201: MembershipSerializer})
    def post(self, request, slug):
        project = permissions.get_project(request.user, slug)
        data = MemberWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.set_member(project=project, actor=request.user, **data.validated_data)
        return Response(MembershipSerializer(membership).data, status=201)


class MemberDetailView(APIView):
    @extend_schema(request=RoleSerializer, responses=MembershipSerializer)
    def patch(self, request, slug, username):
        project = permissions.get_project(request.user, slug)
        data = RoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not Membership.objects.filter(project=project, user__username=username).exists():
            raise NotFound(f"'{username}' is not a member of this project.")
        membership = services.set_member(
            project=project, actor=request.user, username=username, role=data.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug, username):
        project = permissions.get_project(request.user, slug)
        services.remove_member(project=project, actor=request.user, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _routine_for(user, pk) -> Routine:
    routine = get_object_or_404(Routine.objects.select_related("project", "latest_version"), pk=pk)
    if not permissions.can_read_routine(user, routine):
        raise NotFound("Routine not found, or you have no access to it.")
    return routine


class RoutineListView(APIView):
    @extend_schema(responses=RoutineSerializer(many=True))
    def get(self, request, slug):
        project = permissions.get_project(request.user, slug)
        routines = Routine.objects.filter(project=project).select_related("project", "latest_version")
        return Response(RoutineSerializer(routines, many=True).data)

    @extend_schema(request=RoutineWriteSerializer, responses={201: RoutineSerializer})
    def post(self, request, slug):
        project = permissions.get_project(request.user, slug)
        data = RoutineWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        routine = services.save_routine(
            project=project, user=request.user, task=data.as_task(), description=data.validated_data["description"]
        )
        return Response(RoutineSerializer(routine).data, status=201)


class RoutineDetailView(APIView):
    @extend_schema(responses=RoutineSerializer)
    def get(self, request, pk):
        return Response(RoutineSerializer(_routine_for(request.user, pk)).data)

    @extend_schema(request=RoutineWriteSerializer, responses=RoutineSerializer)
    def put(self, request, pk):
        routine = _routine_for(request.user, pk)
        data = RoutineWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        routine = services.save_routine(
            project=routine.project,
            user=request.user,
            task=data.as_task(),
            description=data.validated_data["description"],
            routine=routine,
        )
        return Response(RoutineSerializer(routine).data)


class RoutineVersionListView(APIView):
    @extend_schema(responses=RoutineVersionSerializer(many=True))
    def get(self, request, pk):
        routine = _routine_for(request.user, pk)
        return Response(RoutineVersionSerializer(routine.versions.select_related("created_by"), many=True).data)


class RoutineRunView(APIView):
    @extend_schema(request=RunSerializer, responses={201: JobSerializer})
    def post(self, request, pk):
        routine = _routine_for(request.user, pk)
        data = RunSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = None
        if data.validated_data.get("version"):
            version = routine.versions.filter(number=data.validated_data["version"]).first()
            if version is None:
                raise NotFound(f"Routine {routine.pk} has no version {data.validated_data['version']}.")
        job = services.run_routine(
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
        job = services.dispatch_task_tree(project=project, user=request.user, tree=request.data)
        return Response({"job_id": job.pk})
