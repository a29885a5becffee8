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
