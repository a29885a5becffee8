"""Query-string filters of the job list (/api/v1/jobs/)."""

import django_filters

from accelerator.filters import IsoDateTimeFilter
from jobs.models import Job
from jobs.states import Status


class JobFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    routine = django_filters.NumberFilter(field_name="routine_version__routine_id")
    user = django_filters.CharFilter(field_name="user__username")
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601, e.g. 2026-01-01T00:00:00Z."
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601, e.g. 2026-02-01T00:00:00Z."
    )

    class Meta:
        model = Job
        fields = ["project", "routine", "user", "status"]
