"""Dispatch jobflows and move them forward as their nodes finish."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accelerator.errors import Forbidden, InvalidInput
from backends import get_backend
from jobflows.dag import DagError, parents_of, tree_to_dag, validate_dag
from jobflows.models import JobflowRun
from jobs import permissions as job_permissions
from jobs import scheduler
from jobs.models import Job, JobEvent
from jobs.services import create_job, enqueue, next_attempt
from jobs.states import CANCELLED_MESSAGE, FINAL, UNSUCCESSFUL, Status, transition
from routines import services as routine_services
from routines.limits import task_limits
from routines.task_spec import SpecError, normalize_task

log = logging.getLogger(__name__)


def as_dag(body: dict) -> dict:
    try:
        return validate_dag(body) if body.get("format") else tree_to_dag(body)
    except DagError as exc:
        raise InvalidInput(str(exc)) from None


def dispatch_flow(*, project, user, body: dict, versions: dict | None = None) -> Job:
    """Create the run, its root job and one PENDING job per node; start what has no parents.

    `versions` (a saved jobflow's run) maps node ids to the routine version
    each runs, pinned by the saved definition: those nodes record no routine
    or version; their body only brings the conf and resources of the job.
    """
    dag = as_dag(body)
    versions = versions or {}
    tasks = {}
    for node in dag["nodes"]:
        try:
            task = normalize_task(node, limits=task_limits())
        except SpecError as exc:
            raise InvalidInput(f"Node {node['id']}: {exc}") from None
        if node["id"] in versions:
            try:
                routine_services.validate_mappings(project=project, conf=task["conf"])
            except InvalidInput as exc:
                raise InvalidInput(f"Node {node['id']}: {exc.detail}") from None
        else:
            task["spec"] = routine_services.validate_spec(project=project, spec=task["spec"])
        tasks[node["id"]] = task
    with transaction.atomic():
        nodes = {}
        for key in dag["order"]:
            task = tasks[key]
            version = versions.get(key)
            if version is None:
                routine = routine_services.get_or_create_routine(project=project, name=task["name"], user=user)
                version = routine_services.record_version(routine=routine, spec=task["spec"], user=user)
            nodes[key] = {**{k: task[k] for k in ("conf", "secrets", "resources", "force_build")}, "version": version}
        return start_flow(project=project, user=user, dag=dag, nodes=nodes)


def start_flow(*, project, user, dag: dict, nodes: dict[str, dict]) -> Job:
    """Create the run, its root job and one PENDING job per node of a validated `dag`; start what has no parents.

    `nodes` maps each node id to its `version`, `conf`, `secrets`,
    `resources` and `force_build`. The versions may belong to another
    project (a hosted jobflow): the jobs still run in `project`.
    """
    now = timezone.now()
    with transaction.atomic():
        root = Job.objects.create(
            project=project,
            user=user,
            name=dag.get("name") or "jobflow",
            status=Status.QUEUED,
            status_changed_at=now,
            queued_at=now,
            timeout=max(n["resources"].get("timeout") or 1 for n in nodes.values()),
        )
        JobEvent.objects.create(job=root, status=Status.QUEUED, reason=f"jobflow submitted by {user}", created_at=now)
        run = JobflowRun.objects.create(
            root=root, project=project, user=user, dag=dag, pipe=f"acc-pipe-run-{root.pk}-{secrets.token_hex(4)}"
        )
        for key in dag["order"]:
            node = nodes[key]
            create_job(
                version=node["version"],
                project=project,
                user=user,
                conf=node["conf"],
                secrets=node["secrets"],
                resources=node["resources"],
                force_build=node["force_build"],
                status=Status.PENDING,
                flow_run=run,
                node_key=key,
                reason="waiting for its parents",
            )
        transaction.on_commit(lambda: advance_flow(run.pk))
    return root


def upstream_keys(job: Job) -> dict[str, str]:
    """node id -> cache key of each parent of a jobflow node (their current attempts); {} for a single job."""
    if not job.flow_run_id:
        return {}
    parents = parents_of(job.flow_run.dag)[job.node_key]
    latest: dict[str, str] = {}
    rows = Job.objects.filter(flow_run_id=job.flow_run_id, node_key__in=parents).order_by("node_key", "-attempt")
    for node_key, key in rows.values_list("node_key", "cache_key"):
        latest.setdefault(node_key, key)
    return {p: latest.get(p, "") for p in parents}


def latest_nodes(run: JobflowRun, *, brief: bool = False) -> dict[str, Job]:
    """The current attempt of every node, by node id; `brief` loads only what advancing needs."""
    latest: dict[str, Job] = {}
    rows = Job.objects.filter(flow_run=run)
    if brief:
        rows = rows.only("id", "node_key", "attempt", "status", "flow_run_id", "cache_key")
    for job in rows.order_by("node_key", "-attempt"):
        latest.setdefault(job.node_key, job)
    return latest


def advance_flow(run_id: int, *, keep_one: bool = False) -> int | None:
    """Queue nodes whose parents all succeeded, skip those below a failure, settle the root.

    With `keep_one`, the caller (a worker whose slot just became free) takes
    one ready job itself: it is admitted at once if its project's quota has
    room (jobs.scheduler.admit_now) and its id is returned; otherwise it waits
    in the fair queue like the others and None is returned. If that worker
    dies first, the reconciler re-sends the admitted QUEUED job.

    Called after every final transition of a node. The run row is locked, so
    two nodes finishing at once advance the flow one after the other.
    """
    keep_one = keep_one and not transaction.get_connection().in_atomic_block  # admit_now runs after our commit
    kept_admitted: list[bool] = []
    with transaction.atomic():
        run = JobflowRun.objects.select_for_update().select_related("root").get(pk=run_id)
        nodes = latest_nodes(run, brief=True)
        status = {key: job.status for key, job in nodes.items()}
        parents = parents_of(run.dag)
        cancelled = run.root.cancel_requested_at is not None
        queued = [] if cancelled else _retry_failed_nodes(run, nodes, status)
        for key in run.dag["order"]:
            if status[key] != Status.PENDING:
                continue
            job = nodes[key]
            failed = [p for p in parents[key] if status[p] in UNSUCCESSFUL]
            if cancelled:
                transition(
                    job.pk,
                    Status.CANCELLED,
                    reason="the jobflow was cancelled",
                    error_code="cancelled",
                    message="Cancelled with its jobflow.",
                )
                status[key] = Status.CANCELLED
            elif failed:
                why = f"Skipped: upstream node {failed[0]} ended {status[failed[0]]}."
                transition(job.pk, Status.SKIPPED, reason=why, error_code="skipped", message=why)
                status[key] = Status.SKIPPED
            elif all(status[p] == Status.SUCCEEDED for p in parents[key]):
                # the worker that takes it asks the build cache first (that may need git and the engine)
                if transition(job.pk, Status.QUEUED, reason="its parents succeeded"):
                    status[key] = Status.QUEUED
                    queued.append((job.pk, 0))
        _settle_root(run, status, cancelled)
        kept = next((job_id for job_id, delay in queued if not delay), None) if keep_one else None
        if kept is not None:  # first, so that no pass for its siblings sends it a start task meanwhile
            project_id = run.root.project_id  # a run's nodes are all of its root's project
            transaction.on_commit(lambda: kept_admitted.append(scheduler.admit_now(kept, project_id=project_id)))
        for job_id, delay in queued:
            if job_id != kept:
                transaction.on_commit(lambda job_id=job_id, delay=delay: enqueue(job_id, delay=delay))
    return kept if kept_admitted and kept_admitted[0] else None


def _retry_failed_nodes(run: JobflowRun, nodes: dict[str, Job], status: dict[str, str]) -> list[tuple[int, float]]:
    """Nodes that ask for `retries` get a new attempt after a failure, with exponential backoff."""
    spec = {n["id"]: n for n in run.dag["nodes"]}
    queued = []
    for key, job in list(nodes.items()):
        retries = int(spec[key].get("retries") or 0)
        if status[key] not in (Status.FAILED, Status.TIMED_OUT) or job.attempt > retries:
            continue
        backoff = spec[key].get("retry_backoff")
        delay = float(10 if backoff is None else backoff) * 2 ** (job.attempt - 1)
        clone = next_attempt(
            job,
            status=Status.QUEUED,
            reason=f"retry {job.attempt} of {retries} after {status[key]}, in {delay:g} s",
            delay=delay,
        )
        nodes[key], status[key] = clone, Status.QUEUED
        queued.append((clone.pk, delay))
    return queued


def retry_flow(*, root: Job, user) -> Job:
    """Re-run only the nodes of a finished run that failed, were cancelled or skipped."""
    if not job_permissions.can_cancel_job(user, root):
        raise Forbidden("Only the run's owner or a maintainer of its project can retry it.")
    if root.routine_version_id is not None:
        raise InvalidInput("Only a jobflow can be retried; dispatch a single job again instead.")
    if root.status not in (Status.FAILED, Status.CANCELLED):
        raise InvalidInput(f"This jobflow is {root.status}; only a FAILED or CANCELLED run can be retried.")
    with transaction.atomic():
        run = JobflowRun.objects.select_for_update().get(root=root)
        if run.pipe_removed_at:
            raise InvalidInput("This run's workflow volume was already removed; dispatch the jobflow again.")
        again = [job for job in latest_nodes(run).values() if job.status in UNSUCCESSFUL]
        for job in again:
            next_attempt(job, status=Status.PENDING, reason=f"retry requested by {user}")
        Job.objects.filter(pk=root.pk).update(cancel_requested_at=None)
        transition(
            root.pk,
            Status.QUEUED,
            reason=f"retry of {len(again)} node(s) by {user}",
            finished_at=None,
            error_code="",
            message="",
        )
        transaction.on_commit(lambda: advance_flow(run.pk))
    root.refresh_from_db()
    return root


def _settle_root(run: JobflowRun, status: dict[str, str], cancelled: bool) -> None:
    root = run.root
    done = all(s in FINAL for s in status.values())
    if root.status == Status.QUEUED and (done or any(s != Status.PENDING for s in status.values())):
        transition(root.pk, Status.RUNNING, reason="its first nodes are queued")
        root.status = Status.RUNNING
    if not done:
        return
    bad = {k: s for k, s in status.items() if s != Status.SUCCEEDED}
    if not bad:
        outcome, code, message = Status.SUCCEEDED, "", ""
    elif cancelled:
        outcome, code, message = Status.CANCELLED, "cancelled", CANCELLED_MESSAGE
    else:
        failed = [k for k, s in bad.items() if s != Status.SKIPPED]
        skipped = [k for k, s in bad.items() if s == Status.SKIPPED]
        outcome, code = Status.FAILED, "nodes_failed"
        message = f"{len(failed)} node(s) did not succeed: {', '.join(f'{k} ({bad[k]})' for k in failed)}"
        if skipped:
            message += f"; {len(skipped)} skipped: {', '.join(skipped)}"
        message += "."
    if root.status == Status.RUNNING:
        transition(root.pk, Status.MAPPING_OUTPUTS, reason="all nodes ended")
    # A succeeded run's volume goes once the last node's container is gone (release_volume); a failed
    # or cancelled run keeps it so that a retry finds its parents' files, until ACC_PIPE_RETENTION.
    transition(root.pk, outcome, reason=message or "all nodes succeeded", error_code=code, message=message)


def release_volume(run_id: int) -> None:
    """Called by a node's worker after its own cleanup: remove the volume of a run that succeeded."""
    if JobflowRun.objects.filter(pk=run_id, root__status=Status.SUCCEEDED, pipe_removed_at__isnull=True).exists():
        remove_pipe(run_id)


def remove_pipe(run_id: int) -> None:
    run = JobflowRun.objects.get(pk=run_id)
    try:
        get_backend().remove_pipe(run.pipe)
    except Exception:
        log.warning("could not remove workflow volume %s", run.pipe, exc_info=True)
        return
    JobflowRun.objects.filter(pk=run_id).update(pipe_removed_at=timezone.now())


def remove_stale_pipes() -> int:
    """Volumes of runs that succeeded, or ended otherwise longer than ACC_PIPE_RETENTION ago."""
    before = timezone.now() - timedelta(seconds=settings.ACC_PIPE_RETENTION)
    ended = Q(root__status=Status.SUCCEEDED) | Q(root__status__in=FINAL, root__finished_at__lt=before)
    stale = JobflowRun.objects.filter(ended, pipe_removed_at__isnull=True)
    ids = list(stale.values_list("pk", flat=True))
    for run_id in ids:
        remove_pipe(run_id)
    return len(ids)
