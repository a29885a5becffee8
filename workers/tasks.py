from celery import shared_task

from workers import services


@shared_task(acks_late=True, ignore_result=True)
def run_job_task(job_id: int) -> None:
    services.execute_job(job_id)


@shared_task(acks_late=True, ignore_result=True)
def finish_job_task(job_id: int, ended: dict) -> None:
    services.finish_job(job_id, ended)


@shared_task(ignore_result=True)
def cancel_orphan_task(job_id: int) -> None:
    services.cancel_orphan(job_id)


@shared_task(ignore_result=True)
def reconcile_task() -> dict:
    return services.reconcile_jobs()
