"""Hosted models: a routine or jobflow version published for other people to launch with their own inputs.

A `HostedModel` is the service people find in the catalog; its access policy
says who may see and launch it. Each `HostedVersion` is immutable: it pins
one routine version (or one jobflow's DAG with its node versions) together
with the schemas of what a launcher brings. A `HostedRun` ties a launch to
the job that carries it out, in a project the launcher owns.
"""

from django.conf import settings
from django.db import models

from routines.models import slug_validator


class Policy(models.TextChoices):
    PRIVATE = "private", "Private: the author only"
    PROJECT = "project", "Project: members of its project"
    PUBLIC = "public", "Public: every signed-in user"
    LINK = "link", "Link: whoever holds the link"


class Kind(models.TextChoices):
    ROUTINE = "routine", "Routine"
    JOBFLOW = "jobflow", "Jobflow"


class HostedModel(models.Model):
    slug = models.SlugField(max_length=64, unique=True, validators=[slug_validator])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown; rendered without raw HTML.")
    tags = models.JSONField(default=list, blank=True)
    project = models.ForeignKey("routines.Project", on_delete=models.CASCADE, related_name="hosted_models")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="hosted_models")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    policy = models.CharField(max_length=16, choices=Policy.choices, default=Policy.PRIVATE)
    link_token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    link_token_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    embed_origins = models.JSONField(default=list, blank=True, help_text="Origins allowed to frame the widget.")
    default_version = models.ForeignKey(
        "HostedVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "slug"]
        permissions = [("launch_hostedmodel", "Can launch the hosted model")]

    def __str__(self):
        return self.slug


class VersionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated: runnable, with a warning"
    ARCHIVED = "archived", "Archived: no longer runnable"


class HostedVersion(models.Model):
    model = models.ForeignKey(HostedModel, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    routine_version = models.ForeignKey(
        "routines.RoutineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="hosted_versions"
    )
    flow = models.JSONField(
        null=True, blank=True, help_text="A jobflow: its validated DAG and the routine version of each node."
    )
    conf_schema = models.JSONField(default=dict, blank=True)
    inputs_schema = models.JSONField(default=list, blank=True)
    secrets_schema = models.JSONField(null=True, blank=True)
    outputs = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.ACTIVE)
    successor = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [models.UniqueConstraint(fields=["model", "number"], name="hosted_version_number_unique")]

    def __str__(self):
        return f"{self.model.slug} v{self.number}"


class Via(models.TextChoices):
    FORM = "form", "Catalog form"
    EXPLORER = "explorer", "File explorer"
    LINK = "link", "Shared link"
    WIDGET = "widget", "Embedded widget"
    API = "api", "Portal API"


class HostedRun(models.Model):
    model = models.ForeignKey(HostedModel, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(HostedVersion, on_delete=models.PROTECT, related_name="runs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="hosted_runs")
    job = models.OneToOneField("workers.Job", on_delete=models.CASCADE, related_name="hosted_run")
    project = models.ForeignKey(
        "routines.Project",
        on_delete=models.CASCADE,
        related_name="hosted_runs",
        help_text="Where inputs and outputs live.",
    )
    output_folder = models.CharField(max_length=1024)
    inputs = models.JSONField(default=dict, blank=True, help_text="Input name -> project path (the launcher's).")
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.FORM)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["model", "-id"]), models.Index(fields=["user", "-id"])]

    def __str__(self):
        return f"{self.model.slug} run #{self.pk}"
