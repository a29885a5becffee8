from celery import shared_task

from jobs import scheduler


@shared_task(ignore_result=True)
def admit_task() -> int:
    """A pass of the fair queue, asked for later (a retry's backoff runs out)."""
    return scheduler.admit()
