import json

from django import forms
from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from routines.dataset_templates import RulesError, check_rules
from routines.models import BaseStack, DatasetTemplate, Membership, Project, Routine, RoutineVersion


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


class IndentedJSONField(forms.JSONField):
    """JSON shown indented, so a rule set of maps with hundreds of regions stays readable in its text box."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value  # what the operator typed, kept as typed so they can fix it
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)  # jsonb keeps no key order anyway


class DatasetTemplateForm(forms.ModelForm):
    rules = IndentedJSONField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text="The JSON accli validate checks each CSV row against (see the README, dataset templates); "
        "checked on save.",
    )

    class Meta:
        model = DatasetTemplate
        fields = ["project", "slug", "name", "description", "public", "rules"]

    def clean_rules(self):
        rules = self.cleaned_data["rules"]
        try:
            check_rules(rules)
        except RulesError as exc:
            raise forms.ValidationError(exc.detail) from None
        return rules


@admin.register(DatasetTemplate)
class DatasetTemplateAdmin(admin.ModelAdmin):
    form = DatasetTemplateForm
    list_display = ["slug", "project", "name", "public", "updated_at"]
    list_filter = ["public", "project"]
    search_fields = ["slug", "name", "project__slug"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
