"""A jobflow run: the DAG as dispatched, its root job and its shared workflow volume.

The root is a Job (so `GET /api/v1/jobs/<root_id>/` serves accli's job id);
it runs nothing and its status is derived from the nodes. Each node is a Job
with `flow_run` and `node_key`; a retried node gets a new Job (attempt + 1).
"""

from django.conf import settings
from django.db import models


class JobflowRun(models.Model):
    root = models.OneToOneField("workers.Job", on_delete=models.CASCADE, related_name="flow")
    project = models.ForeignKey("routines.Project", on_delete=models.CASCADE, related_name="flow_runs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="flow_runs")
    dag = models.JSONField(help_text="Validated native DAG: nodes, edges, topological order.")
    pipe = models.CharField(max_length=100, help_text="Workflow volume shared by every node, at /mnt/pipe.")
    pipe_removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"flow #{self.root_id}"


class Jobflow(models.Model):
    """A saved jobflow: a named definition the builder edits; each change is a new immutable JobflowVersion."""

    project = models.ForeignKey("routines.Project", on_delete=models.CASCADE, related_name="jobflows")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    latest_version = models.ForeignKey(
        "JobflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="jobflow_name_unique_in_project")]
        ordering = ["project", "name"]

    def __str__(self):
        return f"{self.project.slug}/{self.name}"


class JobflowVersion(models.Model):
    """One saved state of a jobflow: the `acc-jobflow/1` definition (jobflows.definitions), never changed."""

    jobflow = models.ForeignKey(Jobflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    definition_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["jobflow", "number"], name="jobflow_version_number_unique"),
        ]
        ordering = ["jobflow", "-number"]

    def __str__(self):
        return f"{self.jobflow} v{self.number}"


class JobflowLaunch(models.Model):
    """Which saved version a run came from (the saved jobflow's page lists its runs; Publish takes the latest)."""

    version = models.ForeignKey(JobflowVersion, on_delete=models.CASCADE, related_name="launches")
    run = models.OneToOneField(JobflowRun, on_delete=models.CASCADE, related_name="launch")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
