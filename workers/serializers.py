from rest_framework import serializers

from workers.models import Job, JobEvent, JobOutput


class JobOutputSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = JobOutput
        fields = ["path", "size", "sha256", "url"]

    def get_url(self, output) -> str:
        return f"/api/v1/projects/{output.job.project.slug}/files/{output.path}"


class JobEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["status", "reason", "created_at"]


class JobSerializer(serializers.ModelSerializer):
    """A job as users see it. Secrets and backend internals are never part of it."""

    project = serializers.CharField(source="project.slug")
    routine = serializers.IntegerField(source="routine_version.routine_id")
    routine_version = serializers.IntegerField(source="routine_version.number")
    user = serializers.CharField(source="user.username")

    class Meta:
        model = Job
        fields = [
            "id",
            "name",
            "project",
            "routine",
            "routine_version",
            "user",
            "status",
            "exit_code",
            "error_code",
            "message",
            "conf",
            "force_build",
            "required_cores",
            "required_ram",
            "required_storage_local",
            "required_storage_workflow",
            "timeout",
            "backend",
            "image",
            "code_commit",
            "created_at",
            "queued_at",
            "building_at",
            "mapping_inputs_at",
            "running_at",
            "mapping_outputs_at",
            "finished_at",
            "cancel_requested_at",
            "log_bytes",
        ]


class JobDetailSerializer(JobSerializer):
    events = JobEventSerializer(many=True, read_only=True)
    outputs = JobOutputSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["events", "outputs"]
