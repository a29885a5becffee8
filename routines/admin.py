from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from routines.models import BaseStack, Membership, Project, Routine, RoutineVersion


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["project__slug", "user__username"]


@admin.register(BaseStack)
class BaseStackAdmin(admin.ModelAdmin):
    list_display = ["name", "image", "workdir", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["name", "image"]


class VersionInline(admin.TabularInline):
    model = RoutineVersion
    extra = 0
    can_delete = False
    fields = ["number", "spec_hash", "created_by", "created_at"]
    readonly_fields = fields


@admin.register(Routine)
class RoutineAdmin(GuardedModelAdmin):
    list_display = ["name", "project", "latest_version", "updated_at"]
    list_filter = ["project"]
    search_fields = ["name", "project__slug"]
    inlines = [VersionInline]


@admin.register(RoutineVersion)
class RoutineVersionAdmin(admin.ModelAdmin):
    list_display = ["routine", "number", "spec_hash", "created_by", "created_at"]
    list_filter = ["routine__project"]
    search_fields = ["routine__name", "spec_hash"]
    readonly_fields = ["routine", "number", "spec", "spec_hash", "created_by", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False  # versions are immutable
