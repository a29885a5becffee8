"""Shapes of the saved jobflow API; what a definition may hold is checked by jobflows.definitions."""

from rest_framework import serializers

from jobflows.models import Jobflow, JobflowVersion


class JobflowVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    definition = serializers.JSONField(help_text="The acc-jobflow/1 definition: nodes pinning routine versions, edges.")

    class Meta:
        model = JobflowVersion
        fields = ["number", "definition", "definition_hash", "created_by", "created_at"]


class JobflowSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug")
    version = serializers.IntegerField(source="latest_version.number", default=None, allow_null=True)
    definition = serializers.JSONField(source="latest_version.definition", default=None, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Jobflow
        fields = [
            "id",
            "project",
            "name",
            "description",
            "version",
            "definition",
            "created_by",
            "created_at",
            "updated_at",
        ]


class JobflowWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, default="", max_length=10_000)
    definition = serializers.JSONField(
        help_text="acc-jobflow/1: {nodes: [{id, routine, version, conf?, inputs?, "
        "outputs?, pipe_writes?, pipe_inputs?}], edges: [[before, after]]}."
    )


class JobflowRunSerializer(serializers.Serializer):
    job_id = serializers.IntegerField(help_text="The run's root job: GET /api/v1/jobs/<job_id>/ lists its nodes.")
    version = serializers.IntegerField(help_text="The saved version that ran.")
