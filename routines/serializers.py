from django.contrib.auth import get_user_model
from rest_framework import serializers

from routines.models import Membership, Project, Role, Routine, RoutineVersion


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["slug", "name", "description", "created_at", "role"]
        read_only_fields = ["created_at", "role"]
        extra_kwargs = {"slug": {"validators": []}}

    def get_role(self, project) -> str | None:
        from routines.permissions import role_of

        return role_of(self.context["request"].user, project)


class ProjectCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class MemberWriteSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class RoutineVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = RoutineVersion
        fields = ["id", "number", "spec", "spec_hash", "created_by", "created_at"]


class RoutineSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug")
    latest_version = RoutineVersionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Routine
        fields = ["id", "project", "name", "description", "created_at", "updated_at", "latest_version"]


class RoutineWriteSerializer(serializers.Serializer):
    """A routine as a form or a script describes it; each save records a version."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    docker_image = serializers.CharField(required=False, allow_blank=True)
    docker_filename = serializers.CharField(required=False, allow_blank=True)
    base_stack = serializers.CharField(required=False, allow_blank=True)
    repo_url = serializers.CharField(required=False, allow_blank=True)
    repo_branch = serializers.CharField(required=False, allow_blank=True)
    command = serializers.CharField(required=False, allow_blank=True)
    conf = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    required_cores = serializers.FloatField(required=False)
    required_ram = serializers.IntegerField(required=False)
    required_storage_local = serializers.IntegerField(required=False)
    required_storage_workflow = serializers.IntegerField(required=False)
    timeout = serializers.IntegerField(required=False)
    build_timeout = serializers.IntegerField(required=False)

    def as_task(self) -> dict:
        """The same shape accli sends, so one validator serves both."""
        data = self.validated_data
        kwargs = {
            k: data[k]
            for k in (
                "docker_image",
                "docker_filename",
                "base_stack",
                "repo_url",
                "repo_branch",
                "command",
                "conf",
                "build_timeout",
            )
            if data.get(k) not in (None, "")
        }
        node = {
            k: data[k]
            for k in (
                "required_cores",
                "required_ram",
                "required_storage_local",
                "required_storage_workflow",
                "timeout",
            )
            if data.get(k) is not None
        }
        return {"name": data["name"], "job_kwargs": kwargs, **node}


class RunSerializer(serializers.Serializer):
    conf = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    secrets = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict, write_only=True
    )
    version = serializers.IntegerField(required=False, help_text="Version number; the latest by default.")
    force_build = serializers.BooleanField(required=False, default=False)


UserModel = get_user_model()
