from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from hosting.models import HostedModel, HostedRun, HostedVersion


class HostedVersionInline(admin.TabularInline):
    model = HostedVersion
    fields = ["number", "status", "successor", "routine_version", "notes", "created_at"]
    readonly_fields = ["number", "routine_version", "created_at"]
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(HostedModel)
class HostedModelAdmin(GuardedModelAdmin):
    list_display = ["slug", "title", "kind", "policy", "project", "author", "default_version", "updated_at"]
    list_filter = ["policy", "kind"]
    search_fields = ["slug", "title", "tags"]
    readonly_fields = ["created_at", "updated_at"]
    exclude = ["link_token_hash", "link_token_encrypted"]
    inlines = [HostedVersionInline]


@admin.register(HostedVersion)
class HostedVersionAdmin(admin.ModelAdmin):
    list_display = ["model", "number", "status", "routine_version", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["model", "number", "routine_version", "flow", "created_at", "created_by"]


@admin.register(HostedRun)
class HostedRunAdmin(admin.ModelAdmin):
    """Runs as operators see them: who, which version, where and how it ended. Secrets live only
    encrypted on the job and are never shown."""

    list_display = ["id", "model", "version", "user", "project", "via", "job_status", "created_at"]
    list_filter = ["via", "model"]
    list_select_related = ["model", "version__model", "user", "project", "job"]
    readonly_fields = ["model", "version", "user", "job", "project", "output_folder", "inputs", "via", "created_at"]

    @admin.display(description="status")
    def job_status(self, run):
        return run.job.status
