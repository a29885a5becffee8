"""Execution backends, chosen by dotted path in settings and loaded lazily."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@cache
def get_backend(name: str | None = None):
    name = name or settings.ACC_BACKEND
    try:
        path = settings.ACC_BACKENDS[name]
    except KeyError:
        raise LookupError(f"Unknown execution backend {name!r}; known: {', '.join(settings.ACC_BACKENDS)}") from None
    return import_string(path)()
