from django.contrib import admin, messages

from jobs.models import Job, JobEvent, JobOutput, LogChunk
from jobs.states import FINAL
from workers import services


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    readonly_fields = ["status", "reason", "created_at"]


class JobOutputInline(admin.TabularInline):
    model = JobOutput
    extra = 0
    can_delete = False
    readonly_fields = ["path", "size", "sha256"]


@admin.action(description="Cancel selected jobs")
def cancel_jobs(modeladmin, request, queryset):
    cancelled = 0
    for job in queryset.exclude(status__in=FINAL).select_related("project"):
        services.cancel_job(job=job, user=request.user)
        cancelled += 1
    modeladmin.message_user(request, f"Asked {cancelled} job(s) to cancel.", messages.SUCCESS)


class FromCacheFilter(admin.SimpleListFilter):
    title = "build-system cache"
    parameter_name = "from_cache"

    def lookups(self, request, model_admin):
        return [("yes", "answered from the cache"), ("no", "ran")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(status="SUCCEEDED", reused_from__isnull=self.value() == "no")
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "node_key",
        "attempt",
        "project",
        "user",
        "status",
        "exit_code",
        "error_code",
        "backend",
        "reused_from_id",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "error_code", "backend", FromCacheFilter, "project", "created_at"]
    search_fields = ["id", "name", "user__username", "project__slug"]
    date_hierarchy = "created_at"
    actions = [cancel_jobs]
    inlines = [JobEventInline, JobOutputInline]
    exclude = ["secrets_encrypted"]
    readonly_fields = [f.name for f in Job._meta.fields if f.name != "secrets_encrypted"]
    list_select_related = ["project", "user"]

    def has_add_permission(self, request):
        return False


@admin.register(JobEvent)
class JobEventAdmin(admin.ModelAdmin):
    list_display = ["job", "status", "reason", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["job", "status", "reason", "created_at"]


@admin.register(LogChunk)
class LogChunkAdmin(admin.ModelAdmin):
    list_display = ["job", "seq", "created_at"]
    readonly_fields = ["job", "seq", "text", "created_at"]
    search_fields = ["job__id"]


@admin.register(JobOutput)
class JobOutputAdmin(admin.ModelAdmin):
    list_display = ["job", "path", "size", "sha256"]
    search_fields = ["path", "sha256"]
