"""Execution backends, chosen by dotted path in settings and loaded lazily."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


def get_backend(name: str | None = None):
    """The backend called `name`, or the configured default (settings.ACC_BACKEND)."""
    return _load(name or settings.ACC_BACKEND)


@cache
def _load(name: str):
    try:
        path = settings.ACC_BACKENDS[name]
    except KeyError:
        raise LookupError(f"Unknown execution backend {name!r}; known: {', '.join(settings.ACC_BACKENDS)}") from None
    return import_string(path)()


_WATCHERS = {
    "local": "backends.local_watch.LocalWatcher",
    "docker": "backends.docker_watch.DockerWatcher",
    "kubernetes": "backends.kube_watch.KubeWatcher",
}


def get_watcher(backend):
    """What the supervisor follows `backend`'s running jobs with (see backends.watch)."""
    try:
        path = _WATCHERS[backend.name]
    except KeyError:
        raise LookupError(f"The {backend.name} backend has no supervisor watcher") from None
    return import_string(path)(backend)
