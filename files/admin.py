"""Read-only admin views of the Xet store: what is stored once, and which projects may use it."""

from django.contrib import admin

from files.models import XetFile, Xorb, XorbAccess


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AccessInline(admin.TabularInline):
    model = XorbAccess
    extra = 0
    can_delete = False
    fields = ["project", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Xorb)
class XorbAdmin(ReadOnly):
    list_display = ["hash", "num_chunks", "unpacked_bytes", "stored_bytes", "created_at"]
    search_fields = ["hash"]
    exclude = ["index"]
    inlines = [AccessInline]


@admin.register(XetFile)
class XetFileAdmin(ReadOnly):
    list_display = ["hash", "project", "size", "sha256", "created_at"]
    list_filter = ["project"]
    search_fields = ["hash", "sha256"]
    exclude = ["terms"]
