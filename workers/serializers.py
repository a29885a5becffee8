from rest_framework import serializers

from jobs.models import Job, JobEvent, JobOutput


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
    routine = serializers.IntegerField(source="routine_version.routine_id", default=None, allow_null=True)
    routine_version = serializers.IntegerField(source="routine_version.number", default=None, allow_null=True)
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
            "wait_reason",
            "priority",
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
            "flow_root",
            "node_key",
            "attempt",
            "reused_from",
            "cache_key",
        ]

    flow_root = serializers.IntegerField(source="flow_run.root_id", default=None, allow_null=True)
    wait_reason = serializers.SerializerMethodField(
        help_text="While QUEUED: why it has not started yet, e.g. 'waiting for quota: project climate uses 8 of 8 "
        "cores'. Empty once its start was sent to a worker, and in every other status."
    )
    priority = serializers.IntegerField(read_only=True, help_text="Higher starts first; set by operators in the admin.")

    def get_wait_reason(self, job) -> str:
        return job.wait_reason if job.status == "QUEUED" else ""


class FlowNodeSerializer(serializers.ModelSerializer):
    node = serializers.CharField(source="node_key")
    started_at = serializers.DateTimeField(source="running_at", allow_null=True)
    reused_from = serializers.SerializerMethodField()
    after = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "node",
            "name",
            "status",
            "attempt",
            "started_at",
            "finished_at",
            "exit_code",
            "message",
            "reused_from",
            "after",
        ]

    def get_reused_from(self, job) -> int | None:
        return job.reused_from_id if job.status == "SUCCEEDED" else None  # while PENDING it names the job awaited

    def get_after(self, job) -> list[str]:
        return self.context.get("parents", {}).get(job.node_key, [])


class LogChunkSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    text = serializers.CharField()


class JobLogsSerializer(serializers.Serializer):
    job_id = serializers.IntegerField()
    status = serializers.CharField()
    chunks = LogChunkSerializer(many=True)
    last_seq = serializers.IntegerField()
    complete = serializers.BooleanField(help_text="True once the job is final and every chunk was sent.")


class JobDetailSerializer(JobSerializer):
    """One job; for a jobflow's root also its nodes (current attempts) and edges."""

    events = JobEventSerializer(many=True, read_only=True)
    outputs = JobOutputSerializer(many=True, read_only=True)
    nodes = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["events", "outputs", "nodes"]

    def get_nodes(self, job) -> list[dict] | None:
        if job.routine_version_id is not None:
            return None
        from jobflows.dag import parents_of
        from jobflows.services import latest_nodes

        run = job.flow
        nodes = latest_nodes(run)
        ordered = [nodes[key] for key in run.dag["order"] if key in nodes]
        return FlowNodeSerializer(ordered, many=True, context={"parents": parents_of(run.dag)}).data
