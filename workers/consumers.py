"""The live channel of the web pages: one websocket per page at /ws/live/.

Client -> server (JSON):
    {"action": "subscribe", "job": <id>, "after_seq": <n, default 0>}
    {"action": "subscribe", "run": <root job id>}
    {"action": "unsubscribe", "job" | "run": <id>}

Server -> client (JSON):
    {"type": "subscribed", "job": id, "status": s}
    {"type": "subscribed", "run": id, "status": s, "nodes": [{"id", "node", "status", "reused_from"}]}
    {"type": "error", "job" | "run": id, "detail": "..."}      (bad requests: no "job"/"run" key)
    {"type": "log", "job": id, "seq": n, "text": "..."}
    {"type": "status", "job": id, "status": s, "reason": r, "run": root id | null, "node": key | ""}

Anonymous sockets are accepted and closed at once with code 4401, so a page
can tell "log in again" from a network error.

Ordering: a consumer handles one message at a time, so group events that
arrive while a subscription catches up from the database wait until it is
done. The group is joined before the database is read; anything stored
after the read is therefore also broadcast to us, and a log chunk seen both
ways is dropped by its seq: a socket never carries one seq twice, not even
after unsubscribing and subscribing again. A live chunk past a gap (the
publisher dropped one) refills the gap from the database.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from jobs import events
from jobs import permissions as job_permissions
from jobs.models import Job, LogChunk
from jobs.states import ALLOWED_FROM, FINAL

NOT_FOUND = "Job not found, or you have no access to it."
CLOSE_UNAUTHENTICATED = 4401
MAX_SUBSCRIPTIONS = 200
PAGE = 200  # log chunks per catch-up query


def _as_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value) or None
    return None


# --- database, on a worker thread --------------------------------------------------
@database_sync_to_async
def _may_read(user_id: int, job_id: int, *, run: bool) -> bool:
    """Whether the user may read job `job_id` (for `run`: a jobflow's root). Unknown and forbidden look alike."""
    jobs = Job.objects.select_related("project").filter(pk=job_id)
    if run:
        jobs = jobs.filter(flow__isnull=False)
    job = jobs.first()
    # a fresh user each time: permissions caches roles on the user object, and a socket lives long
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    return job is not None and user is not None and job_permissions.can_read_job(user, job)


@database_sync_to_async
def _job_status(job_id: int) -> str | None:
    return Job.objects.filter(pk=job_id).values_list("status", flat=True).first()


@database_sync_to_async
def _chunks(job_id: int, after: int, before: int | None = None) -> list[tuple[int, str]]:
    rows = LogChunk.objects.filter(job_id=job_id, seq__gt=after)
    if before is not None:
        rows = rows.filter(seq__lt=before)
    return list(rows.order_by("seq").values_list("seq", "text")[:PAGE])


@database_sync_to_async
def _run_snapshot(root_id: int) -> tuple[str, list[dict]] | None:
    from jobflows.models import JobflowRun
    from jobflows.services import latest_nodes

    run = JobflowRun.objects.select_related("root").filter(root_id=root_id).first()
    if run is None:
        return None
    nodes = latest_nodes(run)
    ordered = [nodes[key] for key in run.dag["order"] if key in nodes]
    return run.root.status, [
        {
            "id": job.pk,
            "node": job.node_key,
            "status": job.status,
            # as in the REST API: while PENDING it names the job awaited, which is not a reuse yet
            "reused_from": job.reused_from_id if job.status == "SUCCEEDED" else None,
        }
        for job in ordered
    ]


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user_id = None
        self.jobs: set[int] = set()  # subscribed jobs
        self.sent: dict[int, int] = {}  # job -> last log seq sent; kept after unsubscribing: never a seq twice
        self.runs: set[int] = set()
        self.statuses: dict[int, str] = {}  # last status told, per job (drops repeats and stale events)
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id = user.pk

    async def disconnect(self, code):
        for job_id in self.jobs:
            await self.channel_layer.group_discard(events.job_group(job_id), self.channel_name)
        for root_id in self.runs:
            await self.channel_layer.group_discard(events.run_group(root_id), self.channel_name)
        self.jobs, self.runs = set(), set()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.user_id is None:
            return
        try:
            content = await self.decode_json(text_data or "")
        except ValueError:
            content = None
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        request = content if isinstance(content, dict) else {}
        action = request.get("action")
        kind = "job" if "job" in request else "run" if "run" in request else None
        target = _as_id(request.get(kind)) if kind else None
        if action not in ("subscribe", "unsubscribe") or target is None:
            await self.send_json(
                {"type": "error", "detail": 'Expected {"action": "subscribe" | "unsubscribe", "job" | "run": <id>}.'}
            )
            return
        if action == "unsubscribe":
            await (self._unsubscribe_job(target) if kind == "job" else self._unsubscribe_run(target))
        elif kind == "run":
            await self._subscribe_run(target)
        else:
            after = request.get("after_seq", 0)
            if isinstance(after, bool) or not isinstance(after, int) or after < 0:
                await self._error("job", target, "after_seq must be a non-negative integer.")
                return
            await self._subscribe_job(target, after)

    # --- jobs ---------------------------------------------------------------------------
    async def _subscribe_job(self, job_id: int, after_seq: int) -> None:
        if job_id not in self.jobs and self._full():
            await self._error("job", job_id, f"At most {MAX_SUBSCRIPTIONS} subscriptions per socket.")
            return
        if not await _may_read(self.user_id, job_id, run=False):  # before joining anything
            await self._error("job", job_id, NOT_FOUND)
            return
        if job_id not in self.jobs:
            await self.channel_layer.group_add(events.job_group(job_id), self.channel_name)
            self.jobs.add(job_id)
        self.sent[job_id] = max(self.sent.get(job_id, 0), after_seq)
        status = await _job_status(job_id)  # read after joining: no move can fall in between
        self.statuses[job_id] = status
        await self.send_json({"type": "subscribed", "job": job_id, "status": status})
        await self._catch_up(job_id)

    async def _unsubscribe_job(self, job_id: int) -> None:
        if job_id in self.jobs:
            self.jobs.discard(job_id)
            await self.channel_layer.group_discard(events.job_group(job_id), self.channel_name)

    async def _catch_up(self, job_id: int, before: int | None = None) -> None:
        """Send the stored chunks after the last seq sent (and below `before`), in order."""
        while True:
            chunks = await _chunks(job_id, self.sent[job_id], before)
            for seq, text in chunks:
                await self._send_log(job_id, seq, text)
            if len(chunks) < PAGE:
                return

    async def _send_log(self, job_id: int, seq: int, text: str) -> None:
        self.sent[job_id] = seq
        await self.send_json({"type": "log", "job": job_id, "seq": seq, "text": text})

    async def job_log(self, event: dict) -> None:
        job_id, seq = event["job_id"], event["seq"]
        if job_id not in self.jobs:  # unsubscribed while this was on its way
            return
        last = self.sent[job_id]
        if seq <= last:  # already sent while catching up
            return
        if seq > last + 1:
            await self._catch_up(job_id, before=seq)
        await self._send_log(job_id, seq, event["text"])

    async def job_status(self, event: dict) -> None:
        if event["job_id"] in self.jobs:
            await self._send_status(event)

    # --- runs -----------------------------------------------------------------------------
    async def _subscribe_run(self, root_id: int) -> None:
        if root_id not in self.runs and self._full():
            await self._error("run", root_id, f"At most {MAX_SUBSCRIPTIONS} subscriptions per socket.")
            return
        if not await _may_read(self.user_id, root_id, run=True):
            await self._error("run", root_id, NOT_FOUND)
            return
        if root_id not in self.runs:
            await self.channel_layer.group_add(events.run_group(root_id), self.channel_name)
            self.runs.add(root_id)
        snapshot = await _run_snapshot(root_id)
        if snapshot is None:  # deleted just now
            await self._unsubscribe_run(root_id)
            await self._error("run", root_id, NOT_FOUND)
            return
        status, nodes = snapshot
        self.statuses[root_id] = status
        self.statuses.update((n["id"], n["status"]) for n in nodes)
        await self.send_json({"type": "subscribed", "run": root_id, "status": status, "nodes": nodes})

    async def _unsubscribe_run(self, root_id: int) -> None:
        if root_id in self.runs:
            self.runs.discard(root_id)
            await self.channel_layer.group_discard(events.run_group(root_id), self.channel_name)

    async def run_node(self, event: dict) -> None:
        if event["run_id"] in self.runs:
            await self._send_status(event)

    # --- helpers --------------------------------------------------------------------------
    async def _send_status(self, event: dict) -> None:
        job_id, status = event["job_id"], event["status"]
        previous = self.statuses.get(job_id)
        # A job subscribed both alone and through its run hears each move twice; an event published
        # just before we read the snapshot can arrive after it. Final states are only left by a retry.
        if status == previous or (previous in FINAL and previous not in ALLOWED_FROM.get(status, ())):
            return
        self.statuses[job_id] = status
        await self.send_json(
            {
                "type": "status",
                "job": job_id,
                "status": status,
                "reason": event.get("reason", ""),
                "run": event.get("run_id"),
                "node": event.get("node", ""),
            }
        )

    def _full(self) -> bool:
        return len(self.jobs) + len(self.runs) >= MAX_SUBSCRIPTIONS

    async def _error(self, kind: str, target: int, detail: str) -> None:
        await self.send_json({"type": "error", kind: target, "detail": detail})
