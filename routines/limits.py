"""The operator's limits on what a task may ask for (settings ACC_MAX_*), for routines.task_spec.normalize_task."""

from django.conf import settings

from routines.task_spec import Limits


def task_limits() -> Limits:
    return Limits(
        cores=settings.ACC_MAX_CORES,
        ram=settings.ACC_MAX_RAM,
        storage=settings.ACC_MAX_STORAGE,
        timeout=settings.ACC_MAX_TIMEOUT,
        retries=settings.ACC_MAX_RETRIES,
        retry_backoff=settings.ACC_MAX_RETRY_BACKOFF,
    )
