"""Filter fields for the API's query strings that hand the database only values it can store."""

from __future__ import annotations

from datetime import UTC, timedelta

import django_filters
from django import forms
from django.utils import timezone

MAX_OFFSET = timedelta(hours=18)


class UTCIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC before it reaches a query.

    PostgreSQL refuses UTC offsets beyond about ±16 hours (Python accepts up to ±24) and dates outside
    its range; in UTC every accepted value is one it stores. Offsets beyond ±18:00 (no time zone has one)
    and times that cannot be expressed in UTC are a 400.
    """

    default_error_messages = {
        "range": "%(value)s cannot be expressed in UTC within the years 1 to 9999; use e.g. 2026-01-01T00:00:00Z.",
        "offset": "%(value)s has a UTC offset beyond ±18:00, which no place uses; use e.g. 2026-01-01T00:00:00Z.",
    }

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > MAX_OFFSET:
            raise forms.ValidationError(self.error_messages["offset"], code="offset", params={"value": value})
        try:
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed)
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(self.error_messages["range"], code="range", params={"value": value}) from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
