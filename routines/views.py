from drf_spectacular.utils import extend_schema
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
)


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
        return Response(RoutineSerializer(permissions.readable_routine(request.user, pk)).data)

    @extend_schema(request=RoutineWriteSerializer, responses=RoutineSerializer)
    def put(self, request, pk):
        routine = permissions.readable_routine(request.user, pk)
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
        routine = permissions.readable_routine(request.user, pk)
        return Response(RoutineVersionSerializer(routine.versions.select_related("created_by"), many=True).data)
