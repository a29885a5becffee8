from django.contrib import admin

from jobflows.models import JobflowRun
from jobs.models import Job


class NodeInline(admin.TabularInline):
    model = Job
    fk_name = "flow_run"
    extra = 0
    can_delete = False
    fields = ["node_key", "attempt", "name", "status", "running_at", "finished_at", "message"]
    readonly_fields = fields
    show_change_link = True


@admin.register(JobflowRun)
class JobflowRunAdmin(admin.ModelAdmin):
    list_display = ["root", "project", "user", "created_at", "pipe", "pipe_removed_at"]
    list_filter = ["project", "root__status"]
    search_fields = ["root__id", "root__name", "user__username"]
    readonly_fields = ["root", "project", "user", "dag", "pipe", "pipe_removed_at", "created_at"]
    inlines = [NodeInline]
