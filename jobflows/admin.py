from django.contrib import admin

from jobflows.models import Jobflow, JobflowRun, JobflowVersion
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


class VersionInline(admin.TabularInline):
    model = JobflowVersion
    extra = 0
    can_delete = False
    fields = ["number", "definition_hash", "created_by", "created_at"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Jobflow)
class JobflowAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "latest_version", "created_by", "updated_at"]
    list_filter = ["project"]
    search_fields = ["name", "project__slug"]
    readonly_fields = ["latest_version", "created_by", "created_at", "updated_at"]
    inlines = [VersionInline]


@admin.register(JobflowVersion)
class JobflowVersionAdmin(admin.ModelAdmin):
    """Versions are immutable: shown, never edited."""

    list_display = ["jobflow", "number", "created_by", "created_at"]
    readonly_fields = ["jobflow", "number", "definition", "definition_hash", "created_by", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False
