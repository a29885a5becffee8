"""The REST shapes of hosted models, versions and runs. Secrets never appear here, and link tokens only
in `link` for those who manage a model and in run status URLs, echoing the token the request presented."""

from urllib.parse import urlencode

from rest_framework import serializers

from hosting import access
from hosting.models import HostedModel, HostedRun, HostedVersion, Policy, VersionStatus
from routines.models import slug_validator


class HostedVersionSerializer(serializers.ModelSerializer):
    routine_version = serializers.SerializerMethodField()
    nodes = serializers.SerializerMethodField()
    successor = serializers.IntegerField(source="successor.number", allow_null=True, default=None)
    runnable = serializers.SerializerMethodField()

    class Meta:
        model = HostedVersion
        fields = [
            "number",
            "status",
            "runnable",
            "successor",
            "routine_version",
            "nodes",
            "conf_schema",
            "inputs_schema",
            "secrets_schema",
            "outputs",
            "notes",
            "created_at",
            "status_changed_at",
        ]

    def get_routine_version(self, version) -> dict | None:
        rv = version.routine_version
        if rv is None:
            return None
        return {"routine": rv.routine_id, "name": rv.routine.name, "number": rv.number}

    def get_nodes(self, version) -> list[str] | None:
        return list(version.flow["dag"]["order"]) if version.flow else None

    def get_runnable(self, version) -> bool:
        return version.status != VersionStatus.ARCHIVED


class HostedModelSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug")
    author = serializers.CharField(source="author.username")
    default_version = serializers.IntegerField(source="default_version.number", allow_null=True, default=None)
    can_manage = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = HostedModel
        fields = [
            "slug",
            "title",
            "description",
            "tags",
            "kind",
            "project",
            "author",
            "policy",
            "default_version",
            "embed_origins",
            "can_manage",
            "link",
            "url",
            "created_at",
            "updated_at",
        ]

    def _user(self):
        return self.context["request"].user

    def get_can_manage(self, model) -> bool:
        return access.can_manage(self._user(), model)

    def get_link(self, model) -> str | None:
        """The shareable link, for those who manage a link-policy model."""
        if model.policy != Policy.LINK or not access.can_manage(self._user(), model):
            return None
        token = access.link_token_of(model)
        return self.context["request"].build_absolute_uri(f"/hosted/{model.slug}/?token={token}") if token else None

    def get_url(self, model) -> str:
        return self.context["request"].build_absolute_uri(f"/hosted/{model.slug}/")


class HostedModelDetailSerializer(HostedModelSerializer):
    versions = HostedVersionSerializer(many=True, read_only=True)

    class Meta(HostedModelSerializer.Meta):
        fields = [*HostedModelSerializer.Meta.fields, "versions"]


class _Schemas(serializers.Serializer):
    conf_schema = serializers.JSONField(required=False, help_text="JSON Schema of the launch conf (an object).")
    inputs_schema = serializers.JSONField(
        required=False, help_text='[{"name", "title", "kind": "file"|"folder", "required", "target", "node"?}]'
    )
    secrets_schema = serializers.JSONField(required=False, allow_null=True, help_text="JSON Schema of the secrets.")
    outputs = serializers.JSONField(required=False, help_text='[{"path": "/code/out/", "name"?, "node"?}]')
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    routine = serializers.IntegerField(required=False, allow_null=True, help_text="A routine of the project.")
    routine_version = serializers.IntegerField(required=False, allow_null=True, help_text="Default: its latest.")
    jobflow = serializers.IntegerField(required=False, allow_null=True, help_text="Root job id of a jobflow run.")


class HostedModelCreateSerializer(_Schemas):
    project = serializers.CharField(max_length=64)
    slug = serializers.CharField(max_length=64, validators=[slug_validator])
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=50000)
    tags = serializers.JSONField(required=False)
    policy = serializers.ChoiceField(choices=Policy.choices, default=Policy.PRIVATE)
    embed_origins = serializers.JSONField(required=False)


class HostedModelUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=50000)
    tags = serializers.JSONField(required=False)
    policy = serializers.ChoiceField(choices=Policy.choices, required=False)
    embed_origins = serializers.JSONField(required=False)
    default_version = serializers.IntegerField(required=False, min_value=1)


class HostedVersionCreateSerializer(_Schemas):
    make_default = serializers.BooleanField(default=True)


class HostedVersionUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=VersionStatus.choices)
    successor = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class ShareSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, allow_blank=True, max_length=150)
    group = serializers.CharField(required=False, allow_blank=True, max_length=150)
    launch = serializers.BooleanField(default=True)


class LinkSerializer(serializers.Serializer):
    link = serializers.CharField()
    token = serializers.CharField()


class LaunchSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    conf = serializers.JSONField(required=False)
    inputs = serializers.JSONField(required=False, help_text='{"<input name>": "acc://<project>/<path>"}')
    secrets = serializers.JSONField(required=False, write_only=True)
    project = serializers.CharField(required=False, allow_blank=True, help_text="Default: your own area.")
    selected = serializers.ListField(child=serializers.CharField(), required=False)


class HostedRunSerializer(serializers.ModelSerializer):
    """A run. Its inputs, conf and outputs are shown to the launcher only, never to the author."""

    version = serializers.IntegerField(source="version.number")
    user = serializers.CharField(source="user.username")
    project = serializers.SerializerMethodField()
    status = serializers.CharField(source="job.status")
    job = serializers.IntegerField(source="job.id")
    started_at = serializers.DateTimeField(source="job.running_at", allow_null=True)
    finished_at = serializers.DateTimeField(source="job.finished_at", allow_null=True)
    reused_from = serializers.IntegerField(source="job.reused_from_id", allow_null=True)
    message = serializers.CharField(source="job.message")
    status_url = serializers.SerializerMethodField()
    detail = serializers.SerializerMethodField()

    class Meta:
        model = HostedRun
        fields = [
            "id",
            "version",
            "user",
            "project",
            "via",
            "status",
            "job",
            "created_at",
            "started_at",
            "finished_at",
            "reused_from",
            "message",
            "status_url",
            "detail",
        ]

    def _own(self, run) -> bool:
        return run.user_id == self.context["request"].user.id

    def get_project(self, run) -> str | None:
        return run.project.slug if self._own(run) else None

    def get_status_url(self, run) -> str:
        """For a link-policy model it carries the token the request presented, so a link holder can poll it."""
        token = self.context.get("token") if run.model.policy == Policy.LINK else None
        query = f"?{urlencode({'token': token})}" if token else ""
        return self.context["request"].build_absolute_uri(f"/api/v1/hosted/{run.model.slug}/runs/{run.pk}/{query}")

    def get_detail(self, run) -> dict | None:
        """Conf, inputs, outputs and log links: the launcher's own business."""
        if not self._own(run) or not self.context.get("detail"):
            return None
        from hosting import services

        request = self.context["request"]
        conf = {k: v for k, v in (run.job.conf or {}).items() if k not in services.MAPPING_KEYS}
        outputs = [
            {
                "path": out.path,
                "size": out.size,
                "sha256": out.sha256,
                "url": request.build_absolute_uri(f"/api/v1/projects/{run.project.slug}/files/{out.path}"),
            }
            for out in services.run_outputs(run)
        ]
        return {
            "conf": conf if run.job.routine_version_id else None,
            "inputs": run.inputs,
            "output_folder": f"acc://{run.project.slug}/{run.output_folder}/",
            "outputs": outputs,
            "job_url": request.build_absolute_uri(f"/jobs/{run.job_id}/"),
            "log_url": request.build_absolute_uri(f"/api/v1/jobs/{run.job_id}/logs/"),
        }
