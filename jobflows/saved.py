"""Saved jobflows: save a definition as a new version, run it, export it, import one.

Running goes through jobflows.services.dispatch_flow like any `acc dispatch`:
the saved version becomes an `acc-dag/1` body, and each node runs the routine
version it pins (no routine or version is created by a run).
"""

from __future__ import annotations

import json

from django.db import IntegrityError, transaction
from django.db.models import Max

from accelerator.errors import Conflict, Forbidden, InvalidInput, NotFound
from files import services as file_services
from jobflows import definitions, wkube
from jobflows.models import Jobflow, JobflowLaunch, JobflowVersion
from jobflows.services import dispatch_flow
from jobs.models import Job
from routines import permissions
from routines.models import Role, RoutineVersion
from routines.task_spec import canonical_hash

MAX_IMPORT = 2 * 1024 * 1024


class InvalidDefinition(InvalidInput):
    """A definition the builder must show at one of its nodes (`node`), or at the top (None)."""

    def __init__(self, detail: str, *, node: str | None = None):
        super().__init__(detail, code="invalid_definition")
        self.node = node


def readable_jobflow(user, pk) -> Jobflow:
    """Jobflow `pk` if `user` is a member of its project; any other is reported as not existing."""
    jobflow = Jobflow.objects.select_related("project", "latest_version").filter(pk=pk).first()
    if jobflow is None or not permissions.has_role(user, jobflow.project, permissions.READ):
        raise NotFound("Jobflow not found, or you are not a member of its project.")
    return jobflow


def _require_member(user, project) -> None:
    if not permissions.has_role(user, project, Role.MEMBER):
        raise Forbidden(f"Saving and running jobflows needs the member role in project '{project.slug}'.")


def usable_routines(user, project):
    """Routines a node may run: the project's own and those shared with the user, the project's first."""
    own = project.routines.all()
    shared = permissions.visible_routines(user).exclude(project=project)
    return list(own.select_related("latest_version", "project")) + list(
        shared.select_related("latest_version", "project").distinct()
    )


def pinned_specs(*, user, project, definition) -> dict:
    """{(routine id, version number): {"name", "spec", "version"}} for every node the user may run."""
    wanted = set()
    for node in definition.get("nodes") or [] if isinstance(definition, dict) else []:
        if isinstance(node, dict) and isinstance(node.get("routine"), int) and isinstance(node.get("version"), int):
            wanted.add((node["routine"], node["version"]))
    rows = RoutineVersion.objects.select_related("routine__project").filter(
        routine_id__in={r for r, _ in wanted}, number__in={n for _, n in wanted}
    )
    out = {}
    for version in rows:
        key = (version.routine_id, version.number)
        routine = version.routine
        if key in wanted and (routine.project_id == project.pk or permissions.can_read_routine(user, routine)):
            out[key] = {"name": routine.name, "spec": version.spec, "version": version}
    return out


def check_definition(*, user, project, definition) -> tuple[dict, dict]:
    """The normalized definition and its pinned specs; an InvalidDefinition names the node at fault."""
    specs = pinned_specs(user=user, project=project, definition=definition)

    def file_exists(url: str) -> bool:
        try:
            relpath = file_services.resolve_acc_url(url, project=project)
        except InvalidInput:
            return False
        return file_services.path_kind(project=project, relpath=relpath.rstrip("/")) is not None

    def locate(url: str) -> str:
        try:
            return file_services.resolve_acc_url(url, project=project)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from None

    try:
        return definitions.normalize(definition, specs=specs, file_exists=file_exists, locate=locate), specs
    except definitions.DefinitionError as exc:
        raise InvalidDefinition(str(exc), node=exc.node) from None


def save_jobflow(
    *, project, user, name: str, definition, description: str = "", jobflow: Jobflow | None = None
) -> tuple[Jobflow, JobflowVersion, bool]:
    """Create or edit a jobflow; a changed definition is a new version. Returns (jobflow, version, new?)."""
    _require_member(user, project)
    name = (name or "").strip()
    if not name or len(name) > 200 or "\x00" in name:
        raise InvalidInput("Give the jobflow a name of 1-200 characters.", code="invalid_name")
    if "\x00" in description or len(description) > 10_000:
        raise InvalidInput("The description must be text of at most 10000 characters.", code="invalid_description")
    normalized, _ = check_definition(user=user, project=project, definition=definition)
    digest = canonical_hash(normalized)
    with transaction.atomic():
        clash = Jobflow.objects.filter(project=project, name=name).exclude(pk=jobflow.pk if jobflow else None)
        if clash.exists():
            raise Conflict(f"A jobflow named '{name}' already exists in '{project.slug}'.")
        if jobflow is None:
            jobflow = Jobflow.objects.create(project=project, name=name, description=description, created_by=user)
        else:
            jobflow = Jobflow.objects.select_for_update().get(pk=jobflow.pk)  # versions numbered one at a time
            Jobflow.objects.filter(pk=jobflow.pk).update(name=name, description=description)
        latest = jobflow.latest_version
        if latest is not None and latest.definition_hash == digest:
            return jobflow, latest, False
        number = (jobflow.versions.aggregate(m=Max("number"))["m"] or 0) + 1
        try:
            version = JobflowVersion.objects.create(
                jobflow=jobflow, number=number, definition=normalized, definition_hash=digest, created_by=user
            )
        except IntegrityError:
            raise Conflict("The jobflow is being saved by someone else right now; try again.") from None
        Jobflow.objects.filter(pk=jobflow.pk).update(latest_version=version)
    jobflow.refresh_from_db()
    return jobflow, version, True


def acc_dag_of(*, user, version: JobflowVersion) -> tuple[dict, dict]:
    """The `acc-dag/1` body of a saved version, checked again (a routine may no longer be visible)."""
    jobflow = version.jobflow
    normalized, specs = check_definition(user=user, project=jobflow.project, definition=version.definition)
    return definitions.to_acc_dag(normalized, specs=specs, name=jobflow.name), specs


def run_jobflow(*, jobflow: Jobflow, user, version: JobflowVersion | None = None) -> Job:
    """Dispatch a saved version (the latest by default) and return the run's root job."""
    _require_member(user, jobflow.project)
    version = version or jobflow.latest_version
    if version is None:
        raise InvalidInput("This jobflow has no saved version yet.")
    body, specs = acc_dag_of(user=user, version=version)
    pinned = {n["id"]: specs[definitions.routine_key(n)]["version"] for n in version.definition["nodes"]}
    with transaction.atomic():
        root = dispatch_flow(project=jobflow.project, user=user, body=body, versions=pinned)
        JobflowLaunch.objects.create(version=version, run=root.flow)
    return root


def export_jobflow(*, jobflow: Jobflow, user, fmt: str, version: JobflowVersion | None = None) -> tuple[str, str]:
    """(file name, text) of a saved version as `acc-dag/1` JSON ("json") or a wkube.py ("wkube")."""
    version = version or jobflow.latest_version
    if version is None:
        raise InvalidInput("This jobflow has no saved version yet.")
    body, _ = acc_dag_of(user=user, version=version)
    if fmt == "json":
        return f"{jobflow.name}-v{version.number}.json", json.dumps(body, indent=2) + "\n"
    if fmt == "wkube":
        return "wkube.py", wkube.to_wkube(body, project=jobflow.project.slug, title=jobflow.name)
    raise InvalidInput("Export as 'json' (acc-dag/1) or 'wkube' (a wkube.py for acc dispatch).")


def parse_import(*, user, project, text: str, filename: str = "") -> dict:
    """An uploaded acc-dag/1 JSON or wkube.py -> a definition over routine versions the user may run.

    A wkube.py is parsed, never executed (jobflows.wkube.parse_wkube).
    """
    if len(text) > MAX_IMPORT:
        raise InvalidInput(f"The file is larger than {MAX_IMPORT // 1024} KiB.")
    try:
        if filename.endswith(".py") or not text.lstrip().startswith("{"):
            dag = wkube.parse_wkube(text)
        else:
            try:
                dag = json.loads(text)
            except ValueError as exc:
                raise definitions.DefinitionError(f"Not valid JSON: {exc}.") from None
        candidates = []
        for routine in usable_routines(user, project):
            for version in routine.versions.order_by("-number"):
                candidates.append({"routine": routine.pk, "version": version.number, "spec": version.spec})
        return definitions.from_acc_dag(dag, candidates=candidates)
    except definitions.DefinitionError as exc:
        raise InvalidDefinition(str(exc), node=exc.node) from None


def import_jobflow(*, project, user, text: str, filename: str = "", jobflow: Jobflow | None = None, name: str = ""):
    """Save an imported file as a new jobflow (named `name`) or a new version of `jobflow`."""
    _require_member(user, project)
    definition = parse_import(user=user, project=project, text=text, filename=filename)
    if jobflow is not None:
        return save_jobflow(
            project=project,
            user=user,
            name=jobflow.name,
            description=jobflow.description,
            definition=definition,
            jobflow=jobflow,
        )
    return save_jobflow(project=project, user=user, name=name, definition=definition)


def latest_run_root(jobflow: Jobflow) -> Job | None:
    launch = JobflowLaunch.objects.filter(version__jobflow=jobflow).select_related("run__root").first()
    return launch.run.root if launch else None


def runs_of(jobflow: Jobflow, limit: int = 10) -> list[JobflowLaunch]:
    return list(JobflowLaunch.objects.filter(version__jobflow=jobflow).select_related("run__root", "version")[:limit])
