import re

from django import forms
from django.contrib import admin, messages

from jobs import quotas, scheduler
from jobs.models import Job, JobEvent, JobOutput, LogChunk, Quota
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
        "priority",
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
    # operators may change only the priority: higher starts first (jobs.scheduler)
    readonly_fields = [f.name for f in Job._meta.fields if f.name not in ("secrets_encrypted", "priority")]
    list_select_related = ["project", "user"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "priority" in form.changed_data:
            scheduler.admit()  # a waiting job may now go first


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bytes|b|[kmgt](?:i?b)?)?\s*$", re.IGNORECASE)
_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class SizeField(forms.CharField):
    """Bytes, entered and shown the human way: '512 MiB', '4 GiB', '1.5G' or a plain number of bytes."""

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            for scale, unit in ((quotas.GIB, "GiB"), (quotas.MIB, "MiB")):
                if value and value % scale == 0:
                    return f"{value // scale} {unit}"
            return str(value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        match = _SIZE.match(str(value))
        if not match:
            raise forms.ValidationError("Write a size such as 512 MiB, 4 GiB or a number of bytes.")
        number, unit = match.group(1), (match.group(2) or "b").lower()
        return int(float(number) * _UNITS.get(unit[0], 1))


class QuotaForm(forms.ModelForm):
    max_ram = SizeField(
        required=False,
        label="Max RAM",
        help_text="Sum of the RAM its started jobs ask for, e.g. 64 GiB or 512 MiB. Empty: no limit.",
    )

    class Meta:
        model = Quota
        fields = ["project", "max_running_jobs", "max_cores", "max_ram"]


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Per-project limits on what its jobs use at once; the row without a project is the default for the others.

    A job over a limit waits QUEUED with a reason ("waiting for quota: project
    climate uses 8 of 8 cores") and starts as soon as the limit allows; a job
    that could never fit is refused at dispatch.
    """

    form = QuotaForm
    list_display = ["__str__", "max_running_jobs", "max_cores", "ram", "updated_at"]
    list_select_related = ["project"]
    search_fields = ["project__slug", "project__name"]
    autocomplete_fields = ["project"]

    @admin.display(description="max RAM", ordering="max_ram")
    def ram(self, quota):
        return "-" if quota.max_ram is None else quotas.size(quota.max_ram)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "title": "Quotas: what each project's jobs may use at once"}
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        scheduler.admit()  # a raised limit lets waiting jobs start now

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        scheduler.admit()


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
