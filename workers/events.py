"""The one module that sends to the channel layer (live status and log lines)."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


def _send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # a broken channel layer must never fail a job
        log.warning("could not publish to %s", group, exc_info=True)


def job_status_changed(job_id: int, status: str, reason: str) -> None:
    _send(job_group(job_id), {"type": "job.status", "job_id": job_id, "status": status, "reason": reason})


def job_log_appended(job_id: int, seq: int, text: str) -> None:
    _send(job_group(job_id), {"type": "job.log", "job_id": job_id, "seq": seq, "text": text})
