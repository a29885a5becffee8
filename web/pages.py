"""What each page shows: read-only queries, kept out of the views.

Every list here is bounded (a page, a "recent" slice) and loads its related
rows with select_related, so a page costs the same few queries whether a
project has ten jobs or a million.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q

from backends.sockets import is_interactive
from files import code as code_source
from interactive import services as interactive_services
from jobflows.dag import parents_of
from jobs import permissions as job_permissions
from jobs.models import InteractiveSession, Job, JobEvent, JobOutput
from jobs.states import FINAL, Status
from routines import permissions
from routines.models import Membership, Project, Routine
from web import launchers, layout
from web.charts import usage_charts
from web.forms import JobFilters
from web.schema_form import routine_settings

PAGE_SIZE = 50
RECENT = 10
PHASES = [
    (Status.QUEUED, "queued_at", "Queued"),
    (Status.BUILDING, "building_at", "Building"),
    (Status.MAPPING_INPUTS, "mapping_inputs_at", "Inputs"),
    (Status.RUNNING, "running_at", "Running"),
    (Status.MAPPING_OUTPUTS, "mapping_outputs_at", "Outputs"),
]
_JOB_RELATED = ("project", "user", "routine_version__routine")


# --- project ---------------------------------------------------------------------
def dashboard(*, project: Project) -> dict:
    recent = (
        Job.objects.filter(project=project, flow_run__isnull=True)
        .select_related(*_JOB_RELATED)
        .order_by("-pk")[:RECENT]
    )
    return {
        "recent_jobs": list(recent),
        "routines": list(Routine.objects.filter(project=project).select_related("latest_version").order_by("name")),
        "members": list(Membership.objects.filter(project=project).select_related("user").order_by("user__username")),
    }


# --- routine ---------------------------------------------------------------------
def stack_summary(spec: dict) -> str:
    stack = spec.get("stack") or {}
    kind = stack.get("kind")
    if kind == "docker_image":
        return f"image {stack.get('image')}"
    if kind == "base_stack":
        return f"base stack {stack.get('name')} ({stack.get('image')})"
    if kind == "docker_filename":
        return f"Dockerfile {stack.get('dockerfile')} in the job folder"
    return "unknown"


def code_summary(spec: dict) -> str:
    code = spec.get("code") or {}
    if code.get("kind") in (None, "none"):
        return "in the image"
    ref = f" @ {code['ref']}" if code.get("ref") else ""
    return f"{code['kind']}: {code_source.redact(code.get('url', ''))}{ref}"


def reuse_summary(spec: dict) -> str:
    """What the build-system cache does with the routine's runs, as the routine page says it."""
    if is_interactive(spec.get("conf")):
        return "never: each run starts a session of its own (sessions are neither answered from the cache nor joined)"
    if spec.get("deterministic") is False:
        return "never (not deterministic): each run starts a new job"
    return "identical runs are answered from the cache"


def stack_note(spec: dict) -> str:
    """What the page says before a run when the routine's image will not be used where jobs run here."""
    if settings.ACC_BACKEND != "local" or not spec.get("stack"):
        return ""
    return (
        "Jobs on this platform run on the local backend, with the worker host's own programs: the routine's image is "
        "not used, so its command finds only what the host has installed (a program only the image has, such as "
        "jupyter, fails with 'not found'). It runs as written on the docker or kubernetes backend."
    )


def routine_page(*, routine: Routine) -> dict:
    versions = list(routine.versions.select_related("created_by").order_by("-number")[:20])
    runs = Job.objects.filter(routine_version__routine=routine).select_related(*_JOB_RELATED).order_by("-pk")[:RECENT]
    spec = routine.latest_version.spec if routine.latest_version_id else {}
    return {
        "versions": versions,
        "recent_runs": list(runs),
        "spec": spec,
        "stack": stack_summary(spec) if spec else "",
        "code": code_summary(spec) if spec else "",
        "reuse": reuse_summary(spec) if spec else "",
        "reusable": bool(spec) and not is_interactive(spec.get("conf")) and spec.get("deterministic") is not False,
        "stack_note": stack_note(spec) if spec else "",
        "set_by_routine": routine_settings(spec.get("conf")) if spec else [],
    }


# --- job ---------------------------------------------------------------------------
def timeline(job: Job) -> list[dict]:
    """The phases a job went through, with when each began; the final one carries the outcome."""
    order = [s for s, _, _ in PHASES]
    reached = order.index(job.status) if job.status in order else (len(order) if job.status in FINAL else -1)
    steps = []
    for i, (status, field, label) in enumerate(PHASES):
        at = getattr(job, field)
        state = "current" if i == reached and job.status not in FINAL else "done" if at else "todo"
        steps.append({"status": status, "label": label, "at": at, "state": state})
    final = job.status if job.status in FINAL else ""
    steps.append({"status": "FINAL", "label": final.title() or "Finished", "at": job.finished_at, "state": final})
    return steps


def job_page(*, job: Job, user) -> dict:
    """What the job page shows. The routine is linked only for those who may read it (a hosted model's launcher
    may not: they get a link to the model instead, asked of the app that registered the job's origin)."""
    return {
        "routine_readable": permissions.can_read_routine(user, job.routine_version.routine),
        "origin": launchers.origin_of(user, job),
        "events": list(JobEvent.objects.filter(job=job).order_by("id")),
        "outputs": list(JobOutput.objects.filter(job=job).order_by("path")),
        "timeline": timeline(job),
        "node_of": job.flow_run.root_id if job.flow_run_id else None,
        "session": interactive_session(job, user),
        "charts": usage_charts(job.usage, cores_requested=job.required_cores, ram_requested=job.required_ram),
    }


def interactive_session(job: Job, user) -> dict | None:
    """An interactive job's session as the page shows it (link, state, end time, what is left to extend).

    `usable` is false for a reader who may not enter it (a viewer): the page then offers no link.
    """
    if not is_interactive(job.conf):
        return None
    described = interactive_services.describe(InteractiveSession.objects.filter(job=job).first(), job)
    return {**described, "usable": interactive_services.may_use(user, job)}


def flow_page(*, root: Job) -> dict:
    from jobflows.services import latest_nodes

    run = root.flow
    nodes = latest_nodes(run)
    drawn = layout.layout(run.dag["order"], run.dag["edges"])
    parents = parents_of(run.dag)
    rows = []
    for key in run.dag["order"]:
        job, box = nodes.get(key), drawn["boxes"][key]
        rows.append({"key": key, "job": job, "box": box, "parents": parents[key]})
    return {"run": run, "nodes": rows, "edges": drawn["edges"], "width": drawn["width"], "height": drawn["height"]}


# --- job lists ---------------------------------------------------------------------------
def job_list(*, user, project: Project | None, filters: JobFilters) -> dict:
    """One page of jobs, newest first, by keyset on the id: no OFFSET scan and no COUNT(*)."""
    jobs = Job.objects.filter(project=project) if project else job_permissions.visible_jobs(user)
    jobs = _filtered(jobs, filters).select_related(*_JOB_RELATED)
    if filters.after:  # going back to newer jobs
        rows = list(jobs.filter(pk__gt=filters.after).order_by("pk")[: PAGE_SIZE + 1])
        more_newer = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        more_older = True
    else:
        if filters.before:
            jobs = jobs.filter(pk__lt=filters.before)
        rows = list(jobs.order_by("-pk")[: PAGE_SIZE + 1])
        more_older = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        more_newer = bool(filters.before)
    return {
        "jobs": rows,
        "older": rows[-1].pk if rows and more_older else None,
        "newer": rows[0].pk if rows and more_newer else None,
    }


def _filtered(jobs, filters: JobFilters):
    if filters.status:
        jobs = jobs.filter(status__in=filters.status)
    if filters.routine:
        jobs = jobs.filter(routine_version__routine_id=filters.routine)
    if filters.user:
        jobs = jobs.filter(user__username=filters.user)
    if filters.since:
        jobs = jobs.filter(created_at__gte=_midnight(filters.since))
    if filters.until:
        jobs = jobs.filter(created_at__lt=_midnight(filters.until + dt.timedelta(days=1)))
    if not filters.nodes:
        jobs = jobs.filter(Q(flow_run__isnull=True))
    return jobs


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def filter_choices(*, user, project: Project | None) -> dict:
    routines = Routine.objects.filter(project=project) if project else permissions.visible_routines(user)
    return {
        "routines": list(routines.select_related("project").order_by("project__slug", "name")[:500]),
        "statuses": list(Status.values),
    }
