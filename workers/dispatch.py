"""Launching jobs: accli task trees, a routine's Run, a launch on selected files; each ends in `submit_job`."""

from __future__ import annotations

import json

from django.db import transaction

from accelerator.errors import Forbidden, InvalidInput, NotFound
from backends import get_backend
from builds import cache
from files import services as file_services
from jobflows import dag
from jobflows import services as flow_services
from jobs import quotas
from jobs.backend_spec import workdir_for
from jobs.models import Job
from jobs.services import enqueue, new_job, save_new
from jobs.states import Status
from routines import permissions
from routines import services as routine_services
from routines.limits import task_limits
from routines.models import Project, Role, Routine, RoutineVersion
from routines.task_spec import SpecError, normalize_task


def submit_job(
    *, version, user, conf: dict, secrets: dict, resources: dict, force_build: bool = False, project=None
) -> Job:
    """Create a job for `version`: answered from the cache, joined to an identical running job, or queued."""
    job = new_job(
        version=version,
        user=user,
        conf=conf,
        secrets=secrets,
        resources=resources,
        force_build=force_build,
        project=project,
        check_quota=False,  # below, and only for a job that is to run: no query when it starts at once
    )
    decision = cache.lookup(job, remote=False)  # a request never waits on git or the container engine
    for field, value in decision.fields().items():
        setattr(job, field, value)
    reason = f"submitted by {user}"
    if decision.live is not None:
        job.status, job.queued_at, job.reused_from = Status.PENDING, None, decision.live
        reason += f"; waits for identical job #{decision.live.pk}"
    with transaction.atomic(savepoint=False):  # one commit for the job, its event and its admission
        save_new(job, reason=reason)
        if decision.origin is not None and cache.settle_reused(
            job, decision.origin, document=decision.document, key=decision.key
        ):
            job.refresh_from_db()
        elif decision.live is not None:
            live_id = decision.live.pk
            transaction.on_commit(lambda: cache.release_joiners(live_id))  # it may have ended meanwhile
        elif not enqueue(job.pk, project_id=job.project_id):  # admitted in this transaction when alone, quota-free
            quotas.refuse_if_never_fits(project=job.project, cores=job.required_cores, ram=job.required_ram)
    return job


def dispatch_task_tree(*, project: Project, user, tree: dict):
    """Dispatch what `accli dispatch` sends: one task, or a tree of them (a jobflow)."""
    if not permissions.has_role(user, project, Role.MEMBER):
        raise Forbidden(f"Dispatching needs the member role in project '{project.slug}'; viewers cannot run jobs.")
    if not isinstance(tree, dict):
        raise InvalidInput("The dispatch body must be a JSON object (a task tree).")
    if tree.get("format") or not dag.is_single_task(tree):
        return flow_services.dispatch_flow(project=project, user=user, body=tree)
    try:
        task = normalize_task(tree, limits=task_limits())
    except SpecError as exc:
        raise InvalidInput(str(exc)) from None
    with transaction.atomic():
        spec = routine_services.validate_spec(project=project, spec=task["spec"])
        routine = routine_services.get_or_create_routine(project=project, name=task["name"], user=user)
        version = routine_services.record_version(routine=routine, spec=spec, user=user)
        return submit_job(
            version=version,
            user=user,
            conf=task["conf"],
            secrets=task["secrets"],
            resources=task["resources"],
            force_build=task["force_build"],
        )


def run_routine(
    *,
    routine: Routine,
    user,
    conf: dict | None = None,
    secrets: dict | None = None,
    version: RoutineVersion | None = None,
    force_build: bool = False,
    resources: dict | None = None,
):
    """Run a routine's version (latest by default) with conf overriding its defaults.

    `resources` (fields of `jobs.services.new_job`) replace the version's;
    a re-run passes the original job's so it asks for what that job had.
    """
    if not permissions.can_run_routine(user, routine):
        raise Forbidden("Running this routine needs the member role in its project.")
    version = version or routine.latest_version
    if version is None:
        raise InvalidInput("This routine has no version yet; create one by editing it or dispatching it.")
    if version.routine_id != routine.pk:
        raise NotFound("That version does not belong to this routine.")
    merged = {**(version.spec.get("conf") or {}), **(conf or {})}
    routine_services.validate_mappings(project=routine.project, conf=merged)
    return submit_job(
        version=version,
        user=user,
        conf=merged,
        secrets=secrets or {},
        resources=dict(resources if resources is not None else version.spec.get("resources") or {}),
        force_build=force_build,
    )


# --- launch on a file-explorer selection ------------------------------------------
SELECTION_DIR = "inputs"


def selection_conf(*, project: Project, version: RoutineVersion, paths: list[str]) -> dict[str, str]:
    """What a job launched on selected project files gets in its conf.

    Each selected file or folder is mapped to `inputs/<its project path>`
    below the job's working directory (on a stack whose working directory is
    the image's own, `/mnt/inputs/<path>`). `selected_files` and
    `selected_folders` are JSON lists of those paths as the command sees
    them; `input_mappings` holds the matching pairs.
    """
    workdir = workdir_for(version.spec["stack"], uses_images=get_backend().uses_images)
    base = f"{workdir.rstrip('/')}/{SELECTION_DIR}" if workdir else "/mnt/inputs"
    chosen, pairs = {"file": [], "folder": []}, []
    for relpath in dict.fromkeys(file_services.clean_relpath(p) for p in paths):
        if not relpath:
            raise InvalidInput("The project root cannot be selected; select files or folders inside it.")
        if ":" in relpath or ";" in relpath:
            raise InvalidInput(f"'{relpath}' cannot be handed to a job: rename it without ':' or ';'.")
        kind = file_services.path_kind(project=project, relpath=relpath)
        if kind is None:
            raise NotFound(f"'{relpath}' does not exist in project '{project.slug}'.")
        slash = "/" if kind == "folder" else ""
        pairs.append(f"acc://{project.slug}/{relpath}{slash}:{base}/{relpath}{slash}")
        shown = f"{SELECTION_DIR}/{relpath}" if workdir else f"{base}/{relpath}"
        chosen[kind].append(shown + slash)
    return {
        "selected_files": json.dumps(chosen["file"], separators=(",", ":")),
        "selected_folders": json.dumps(chosen["folder"], separators=(",", ":")),
        "input_mappings": ";".join(pairs),
    }


def run_routine_on_selection(
    *,
    routine: Routine,
    user,
    paths: list[str],
    conf: dict | None = None,
    secrets: dict | None = None,
    version: RoutineVersion | None = None,
    force_build: bool = False,
):
    """Run a routine on files and folders selected in its project: run_routine plus `selection_conf`.

    The selection's input mappings come after those of the routine's
    defaults (or of `conf`), so both are copied in.
    """
    if not permissions.can_run_routine(user, routine):
        raise Forbidden("Running this routine needs the member role in its project.")
    version = version or routine.latest_version
    if version is None:
        raise InvalidInput("This routine has no version yet; create one by editing it or dispatching it.")
    conf = dict(conf or {})
    extra = selection_conf(project=routine.project, version=version, paths=paths) if paths else {}
    if extra:
        given = conf.get("input_mappings", (version.spec.get("conf") or {}).get("input_mappings", ""))
        extra["input_mappings"] = ";".join(m for m in (given, extra["input_mappings"]) if m)
    return run_routine(
        routine=routine, user=user, conf={**conf, **extra}, secrets=secrets, version=version, force_build=force_build
    )
