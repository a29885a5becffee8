from django.contrib import admin, messages

from interactive import services
from jobs.models import InteractiveSession


@admin.action(description="Stop selected interactive sessions")
def stop_sessions(modeladmin, request, queryset):
    stopped = 0
    for session in queryset.filter(ended_at__isnull=True).select_related("job__project", "job__user"):
        services.stop_session(job=session.job, user=request.user)
        stopped += 1
    modeladmin.message_user(request, f"Asked {stopped} session(s) to stop.", messages.SUCCESS)


@admin.register(InteractiveSession)
class InteractiveSessionAdmin(admin.ModelAdmin):
    """Operators see every session with its internal address; the token (the URL) is not listed."""

    list_display = ["job", "socket", "address", "ready_at", "ends_at", "extended_seconds", "ended_at"]
    list_filter = ["ended_at", "ready_at"]
    search_fields = ["job__id", "job__user__username"]
    exclude = ["token"]
    readonly_fields = [f.name for f in InteractiveSession._meta.fields if f.name != "token"]
    list_select_related = ["job"]
    actions = [stop_sessions]

    def has_add_permission(self, request):
        return False
