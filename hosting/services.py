"""Publish, change and launch hosted models. Views and pages call these; access checks come first.

A launch runs the author's pinned routine version (or jobflow) in a project
the launcher owns: their own area (`home-<username>`) unless they name a
project where they hold the member role. Inputs come from that project, and
outputs go to `hosted/<model slug>/<launch digest>/` in it. The digest is
taken over the version, conf, input contents and secrets, so an identical
launch lands in the same folder (and the build-system cache can answer it),
while any other launch never overwrites an earlier one's outputs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import statistics
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accelerator.crypto import hashing_key
from accelerator.errors import Conflict, Forbidden, InvalidInput, NotFound
from files import jobstore
from files import services as file_services
from files.digests import path_digests
from hosting import access, schemas
from hosting.models import HostedModel, HostedRun, HostedVersion, Kind, Policy, VersionStatus, Via
from jobflows.services import start_flow
from jobs.models import Job, JobOutput
from jobs.states import FINAL, Status
from routines import permissions
from routines.models import Membership, Project, Role, Routine, RoutineVersion
from workers.dispatch import submit_job

MAPPING_KEYS = ("input_mappings", "output_mappings")
RESERVED_SLUGS = {"new"}  # /hosted/new/ is the publish page


def _problem(exc: schemas.SchemaProblem) -> InvalidInput:
    return InvalidInput(str(exc))


# --- the launcher's own area ---------------------------------------------------------------
def home_project(user) -> Project:
    """The user's own project, created on first use; they own it and nobody else is a member."""
    project = Project.objects.filter(personal_of=user).first()
    if project is not None:
        return project
    base = re.sub(r"[^a-z0-9-]+", "-", f"home-{user.username}".lower()).strip("-")[:58] or "home"
    for n in range(100):
        slug = base if n == 0 else f"{base}-{n}"
        try:
            with transaction.atomic():
                project = Project.objects.create(slug=slug, name=f"{user.username}'s area", personal_of=user)
                Membership.objects.create(project=project, user=user, role=Role.OWNER)
                return project
        except IntegrityError:
            found = Project.objects.filter(personal_of=user).first()
            if found is not None:
                return found
    raise Conflict("Could not create your own area; try again.")


def target_project(user, slug: str | None) -> Project:
    if not slug:
        return home_project(user)
    return permissions.get_project(user, slug, needed=Role.MEMBER)


# --- publishing -----------------------------------------------------------------------------
def _source(*, project: Project, user, routine: int | None, routine_version: int | None, jobflow: int | None):
    """(kind, routine version, flow) of what a version pins, from the author's project."""
    if sum(x is not None for x in (routine, jobflow)) != 1:
        raise InvalidInput("Give exactly one of routine (a routine id) or jobflow (the root job id of a jobflow run).")
    if routine is not None:
        found = Routine.objects.filter(pk=routine, project=project).select_related("latest_version").first()
        if found is None:
            raise InvalidInput(f"Routine {routine} is not in project '{project.slug}'.")
        if routine_version is not None:
            version = RoutineVersion.objects.filter(routine=found, number=routine_version).first()
            if version is None:
                raise InvalidInput(f"Routine '{found.name}' has no version {routine_version}.")
        else:
            version = found.latest_version
        if version is None:
            raise InvalidInput(f"Routine '{found.name}' has no version yet; run or save it first.")
        return Kind.ROUTINE, version, None
    root = Job.objects.filter(pk=jobflow, project=project, routine_version__isnull=True).select_related("flow").first()
    if root is None or not hasattr(root, "flow"):
        raise InvalidInput(f"Job {jobflow} is not the root of a jobflow run in project '{project.slug}'.")
    run = root.flow
    versions = dict(
        Job.objects.filter(flow_run=run).order_by("node_key", "attempt").values_list("node_key", "routine_version")
    )
    flow = {"dag": run.dag, "versions": versions}
    return Kind.JOBFLOW, None, flow


def _checked_schemas(*, kind: str, version: RoutineVersion | None, flow: dict | None, data: dict) -> dict:
    nodes = set(flow["dag"]["order"]) if flow else None
    conf_schema = data.get("conf_schema")
    if conf_schema is None and version is not None:
        conf_schema = version.spec.get("conf_schema") or {}
    try:
        return {
            "conf_schema": schemas.check_object_schema(conf_schema, "conf_schema"),
            "inputs_schema": schemas.check_inputs(data.get("inputs_schema"), nodes=nodes),
            "secrets_schema": schemas.check_secrets_schema(data.get("secrets_schema")),
            "outputs": schemas.check_outputs(data.get("outputs"), nodes=nodes),
        }
    except schemas.SchemaProblem as exc:
        raise _problem(exc) from None


def publish(*, user, project_slug: str, data: dict) -> HostedModel:
    """A new hosted model with its version 1. `data` is what HostedModelCreate describes."""
    project = permissions.get_project(user, project_slug, needed=Role.MEMBER)
    slug = data["slug"]
    if slug in RESERVED_SLUGS:
        raise InvalidInput(f"'{slug}' is reserved (it names a page); choose another slug.")
    if HostedModel.objects.filter(slug=slug).exists():
        raise Conflict(f"A hosted model with slug '{slug}' exists already; choose another slug.")
    kind, version, flow = _source(
        project=project,
        user=user,
        routine=data.get("routine"),
        routine_version=data.get("routine_version"),
        jobflow=data.get("jobflow"),
    )
    checked = _checked_schemas(kind=kind, version=version, flow=flow, data=data)
    try:
        tags = schemas.check_tags(data.get("tags"))
        origins = schemas.check_origins(data.get("embed_origins"))
    except schemas.SchemaProblem as exc:
        raise _problem(exc) from None
    with transaction.atomic():
        try:
            with transaction.atomic():
                model = HostedModel.objects.create(
                    slug=slug,
                    title=data["title"],
                    description=data.get("description") or "",
                    tags=tags,
                    project=project,
                    author=user,
                    kind=kind,
                    policy=data.get("policy") or Policy.PRIVATE,
                    embed_origins=origins,
                )
        except IntegrityError:
            raise Conflict(f"A hosted model with slug '{slug}' exists already; choose another slug.") from None
        if model.policy == Policy.LINK:
            access.new_link_token(model)
        first = HostedVersion.objects.create(
            model=model,
            number=1,
            routine_version=version,
            flow=flow,
            notes=data.get("notes") or "",
            created_by=user,
            **checked,
        )
        model.default_version = first
        model.save()
    return model


def add_version(*, model: HostedModel, user, data: dict) -> HostedVersion:
    """A new immutable version; by default it pins the routine's latest version (or the given source)."""
    if not access.can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can publish versions.")
    current = model.default_version
    source = {k: data.get(k) for k in ("routine", "routine_version", "jobflow")}
    if source["routine"] is None and source["jobflow"] is None and current is not None:
        if model.kind == Kind.ROUTINE:
            source["routine"] = current.routine_version.routine_id
        else:
            raise InvalidInput("Give jobflow: the root job id of the jobflow run this version pins.")
    kind, version, flow = _source(project=model.project, user=user, **source)
    if kind != model.kind:
        raise InvalidInput(f"This hosted model publishes a {model.kind}; a version cannot pin a {kind}.")
    inherited = {}
    if current is not None:
        inherited = {
            "conf_schema": current.conf_schema,
            "inputs_schema": current.inputs_schema,
            "secrets_schema": current.secrets_schema,
            "outputs": current.outputs,
        }
    checked = _checked_schemas(kind=kind, version=version, flow=flow, data={**inherited, **_given(data)})
    with transaction.atomic():
        HostedModel.objects.select_for_update().filter(pk=model.pk).first()
        number = (model.versions.aggregate(m=Max("number"))["m"] or 0) + 1
        created = HostedVersion.objects.create(
            model=model,
            number=number,
            routine_version=version,
            flow=flow,
            notes=data.get("notes") or "",
            created_by=user,
            **checked,
        )
        if data.get("make_default", True):
            HostedModel.objects.filter(pk=model.pk).update(default_version=created, updated_at=timezone.now())
            model.default_version = created
    return created


def _given(data: dict) -> dict:
    return {k: data[k] for k in ("conf_schema", "inputs_schema", "secrets_schema", "outputs") if k in data}


def update_model(*, model: HostedModel, user, data: dict) -> HostedModel:
    """Change title, description, tags, policy, embed origins or the default version."""
    if not access.can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can change this hosted model.")
    try:
        if "tags" in data:
            model.tags = schemas.check_tags(data["tags"])
        if "embed_origins" in data:
            model.embed_origins = schemas.check_origins(data["embed_origins"])
    except schemas.SchemaProblem as exc:
        raise _problem(exc) from None
    for field in ("title", "description"):
        if field in data:
            setattr(model, field, data[field])
    if "policy" in data:
        model.policy = data["policy"]
        if model.policy == Policy.LINK and not model.link_token_hash:
            access.new_link_token(model)
    if data.get("default_version") is not None:
        version = get_version(model, data["default_version"])
        if version.status == VersionStatus.ARCHIVED:
            raise InvalidInput(f"Version {version.number} is archived; an archived version cannot be the default.")
        model.default_version = version
    model.save()
    return model


def get_version(model: HostedModel, number: int) -> HostedVersion:
    version = model.versions.filter(number=number).first()
    if version is None:
        numbers = ", ".join(str(n) for n in model.versions.order_by("number").values_list("number", flat=True))
        raise NotFound(f"'{model.slug}' has no version {number}; its versions are {numbers}.")
    return version


def set_version_status(*, model: HostedModel, user, number: int, status: str, successor: int | None = None):
    """Deprecate (still runnable, with a warning and its successor), archive (not runnable) or reactivate."""
    if not access.can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can change versions.")
    version = get_version(model, number)
    if status not in VersionStatus.values:
        raise InvalidInput(f"status must be one of {', '.join(VersionStatus.values)}.")
    follow = None
    if successor is not None:
        follow = get_version(model, successor)
        if follow.pk == version.pk or follow.status == VersionStatus.ARCHIVED:
            raise InvalidInput("The successor must be another version that is not archived.")
    elif status != VersionStatus.ACTIVE:
        follow = (
            model.versions.exclude(pk=version.pk)
            .exclude(status=VersionStatus.ARCHIVED)
            .filter(number__gt=version.number)
            .order_by("-number")
            .first()
        )
    with transaction.atomic():
        version.status = status
        version.successor = follow if status != VersionStatus.ACTIVE else None
        version.status_changed_at = timezone.now()
        version.save(update_fields=["status", "successor", "status_changed_at"])
        if status == VersionStatus.ARCHIVED:
            replacement = follow or (
                model.versions.exclude(status=VersionStatus.ARCHIVED).exclude(pk=version.pk).order_by("-number").first()
            )
            # versions that named this one as successor name the replacement (or none, if that is themselves)
            pointing = model.versions.filter(successor=version)
            pointing.exclude(pk=getattr(replacement, "pk", None)).update(successor=replacement)
            pointing.update(successor=None)
            if model.default_version_id == version.pk:
                HostedModel.objects.filter(pk=model.pk).update(default_version=replacement)
                model.default_version = replacement
        elif model.default_version_id is None:  # every other version is archived
            HostedModel.objects.filter(pk=model.pk).update(default_version=version)
            model.default_version = version
    return version


def rotate_link(*, model: HostedModel, user) -> str:
    if not access.can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can manage the link.")
    token = access.new_link_token(model)
    model.save(update_fields=["link_token_hash", "link_token_encrypted", "updated_at"])
    return token


def revoke_link(*, model: HostedModel, user) -> None:
    if not access.can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can manage the link.")
    model.link_token_hash, model.link_token_encrypted = "", None
    model.save(update_fields=["link_token_hash", "link_token_encrypted", "updated_at"])


def set_share(*, model: HostedModel, user, username: str = "", group: str = "", launch: bool = True, remove=False):
    if not access.can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can share this hosted model.")
    if bool(username) == bool(group):
        raise InvalidInput("Give either username or group.")
    target = {}
    if username:
        found = get_user_model().objects.filter(username=username, is_active=True).first()
        if found is None:
            raise InvalidInput(f"There is no user '{username}'.")
        target["user"] = found
    else:
        found = Group.objects.filter(name=group).first()
        if found is None:
            raise InvalidInput(f"There is no group '{group}'.")
        target["group"] = found
    if remove:
        access.unshare(model, **target)
    else:
        access.share(model, launch=launch, **target)
    return access.shares_of(model)


# --- launching --------------------------------------------------------------------------------
def version_to_launch(model: HostedModel, number: int | None) -> HostedVersion:
    if number is None:
        version = model.default_version
        if version is None or version.status == VersionStatus.ARCHIVED:
            raise InvalidInput(f"'{model.slug}' has no version that can be launched; ask its author to publish one.")
        return version
    version = get_version(model, number)
    if version.status == VersionStatus.ARCHIVED:
        alternative = version.successor or model.default_version
        hint = f" Launch version {alternative.number} instead." if alternative else ""
        raise InvalidInput(
            f"Version {version.number} of '{model.slug}' is archived and can no longer be launched.{hint}"
        )
    return version


def _chosen_inputs(version: HostedVersion, project: Project, given, selected: list[str]) -> dict[str, dict]:
    """name -> {"path", "kind", "target", "node"?} for every input provided; missing required ones refused."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InvalidInput('inputs must be an object: {"<input name>": "acc://<project>/<path>"}.')
    declared = {item["name"]: item for item in version.inputs_schema}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidInput(f"Unknown inputs: {', '.join(unknown)}. This model takes: {', '.join(declared) or 'none'}.")
    paths: dict[str, str] = {k: v for k, v in given.items() if v not in (None, "")}
    free = [name for name in declared if name not in paths]
    for selected_path in selected:
        relpath = file_services.clean_relpath(selected_path)
        kind = file_services.path_kind(project=project, relpath=relpath) if relpath else None
        if kind is None:
            raise InvalidInput(f"Selected '{selected_path}' does not exist in project '{project.slug}'.")
        slot = next((n for n in free if declared[n]["kind"] == kind), None)
        if slot is None:
            raise InvalidInput(
                f"'{relpath}' does not fit: this model takes {_takes(declared.values())}, and those are filled."
            )
        free.remove(slot)
        paths[slot] = relpath
    chosen = {}
    for name, item in declared.items():
        raw = paths.get(name)
        if raw is None:
            if item["required"]:
                raise InvalidInput(f"Input '{name}' ({item['title']}) is required: give a {item['kind']} path.")
            continue
        if not isinstance(raw, str):
            raise InvalidInput(f"Input '{name}' must be a path string, e.g. acc://{project.slug}/data/input.csv.")
        url = raw if raw.startswith("acc://") else f"acc://{project.slug}/{raw.lstrip('/')}"
        relpath = file_services.resolve_acc_url(url, project=project).rstrip("/")
        kind = file_services.path_kind(project=project, relpath=relpath) if relpath else None
        if kind is None:
            raise InvalidInput(f"Input '{name}': '{raw}' does not exist in project '{project.slug}'.")
        if kind != item["kind"]:
            raise InvalidInput(f"Input '{name}' must be a {item['kind']}; '{raw}' is a {kind}.")
        if ":" in relpath or ";" in relpath:
            raise InvalidInput(f"Input '{name}': rename '{relpath}' without ':' or ';' to hand it to a job.")
        chosen[name] = {"path": relpath, **{k: item[k] for k in ("kind", "target")}, "node": item.get("node")}
    return chosen


def _takes(items) -> str:
    kinds = [i["kind"] for i in items]
    return f"{kinds.count('file')} file(s) and {kinds.count('folder')} folder(s)"


def _launch_digest(version: HostedVersion, project: Project, conf: dict, chosen: dict, secrets: dict) -> str:
    document = {
        "version": version.pk,
        "conf": conf,
        "inputs": {n: path_digests(project=project, relpath=c["path"]) for n, c in sorted(chosen.items())},
        "secrets": hmac.new(hashing_key(), json.dumps(secrets, sort_keys=True).encode(), "sha256").hexdigest(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def _node_conf(base: dict, *, project: Project, conf: dict, chosen: dict, outputs: list, folder: str, node=None):
    """The conf one job gets: the routine's own (without its mappings), the launch's, and the hosted mappings."""
    merged = {k: v for k, v in (base or {}).items() if k not in MAPPING_KEYS}
    merged.update(conf)
    ins = [f"acc://{project.slug}/{c['path']}{'/' if c['kind'] == 'folder' else ''}:{c['target']}" for c in chosen]
    outs = []
    for out in outputs:
        slash = "/" if out["path"].endswith("/") else ""
        outs.append(f"{out['path']}:acc://{project.slug}/{folder}/{out['name']}{slash}")
    if ins:
        merged["input_mappings"] = ";".join(ins)
    if outs:
        merged["output_mappings"] = ";".join(outs)
    merged["selected_files"] = json.dumps([c["target"] for c in chosen if c["kind"] == "file"], separators=(",", ":"))
    merged["selected_folders"] = json.dumps(
        [c["target"] for c in chosen if c["kind"] == "folder"], separators=(",", ":")
    )
    return merged


def _share_code(version: RoutineVersion, project: Project) -> None:
    code = version.spec.get("code") or {}
    if code.get("kind") == "jobstore" and version.routine.project_id != project.pk:
        from files.code import parse_jobstore_url

        _, _, filename = parse_jobstore_url(code["url"])
        jobstore.copy_code(source=version.routine.project, target=project, filename=filename)


def launch(
    *,
    model: HostedModel,
    user,
    token: str | None = None,
    version: int | None = None,
    conf=None,
    inputs=None,
    secrets=None,
    project: str | None = None,
    selected: list[str] | None = None,
    via: str = Via.API,
) -> HostedRun:
    """Start a run of `model` for `user`; nothing is created when anything is wrong."""
    if not access.can_launch(user, model, token=token):
        if access.can_view(user, model, token=token):
            raise Forbidden(f"'{model.slug}' is shared with you for viewing only; ask its author for launch access.")
        raise NotFound(access.not_found_message(model.slug, token))
    chosen_version = version_to_launch(model, version)
    try:
        conf_env, conf_secrets = schemas.split_secrets(
            chosen_version.conf_schema, schemas.check_conf(chosen_version.conf_schema, conf)
        )
        secret_values = {**conf_secrets, **schemas.check_secrets(chosen_version.secrets_schema, secrets)}
    except schemas.SchemaProblem as exc:
        raise _problem(exc) from None
    target = target_project(user, project)
    chosen = _chosen_inputs(chosen_version, target, inputs, list(selected or []))
    folder = f"hosted/{model.slug}/{_launch_digest(chosen_version, target, conf_env, chosen, secret_values)}"
    with transaction.atomic():
        if model.kind == Kind.ROUTINE:
            job = _launch_routine(chosen_version, user, target, conf_env, chosen, secret_values, folder)
        else:
            job = _launch_flow(chosen_version, user, target, conf_env, chosen, secret_values, folder, model)
        return HostedRun.objects.create(
            model=model,
            version=chosen_version,
            user=user,
            job=job,
            project=target,
            output_folder=folder,
            inputs={name: c["path"] for name, c in chosen.items()},
            via=via,
        )


def _launch_routine(version, user, target, conf_env, chosen, secret_values, folder) -> Job:
    rv = version.routine_version
    _share_code(rv, target)
    job_conf = _node_conf(
        rv.spec.get("conf"),
        project=target,
        conf=conf_env,
        chosen=list(chosen.values()),
        outputs=version.outputs,
        folder=folder,
    )
    return submit_job(
        version=rv,
        project=target,
        user=user,
        conf=job_conf,
        secrets=secret_values,
        resources=dict(rv.spec.get("resources") or {}),
    )


def _launch_flow(version, user, target, conf_env, chosen, secret_values, folder, model) -> Job:
    dag = version.flow["dag"]
    pinned = {v.pk: v for v in RoutineVersion.objects.filter(pk__in=version.flow["versions"].values())}
    nodes = {}
    for key in dag["order"]:
        rv = pinned.get(version.flow["versions"].get(key))
        if rv is None:
            raise Conflict(f"Node '{key}' of this version has no routine version any more; publish a new version.")
        _share_code(rv, target)
        node_conf = _node_conf(
            rv.spec.get("conf"),
            project=target,
            conf=conf_env,
            chosen=[c for c in chosen.values() if c.get("node") == key],
            outputs=[o for o in version.outputs if o.get("node") == key],
            folder=folder,
        )
        resources = dict(rv.spec.get("resources") or {})
        nodes[key] = {
            "version": rv,
            "conf": node_conf,
            "secrets": secret_values,
            "resources": resources,
            "force_build": False,
        }
    return start_flow(project=target, user=user, dag={**dag, "name": model.slug}, nodes=nodes)


# --- runs and usage ---------------------------------------------------------------------------
def runs_for(user, model: HostedModel):
    """Every run for those who manage the model; one's own runs for everyone else."""
    runs = HostedRun.objects.filter(model=model).select_related("version", "user", "job", "project")
    return runs if access.can_manage(user, model) else runs.filter(user=user)


def own_run(user, slug: str, run_id: int) -> HostedRun | None:
    """`user`'s own run `run_id` of the model `slug`, whatever their access to the model is now."""
    if not user or not user.is_authenticated:
        return None
    runs = HostedRun.objects.select_related("model", "version", "user", "job", "project")
    return runs.filter(pk=run_id, user=user, model__slug=slug).first()


def delete_model(*, model: HostedModel, user) -> None:
    """Delete a model that was never launched, with its versions and shares."""
    if not access.can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can delete this hosted model.")
    if model.runs.exists():
        raise Conflict("This model has runs, whose history stays readable; archive its versions instead.")
    with transaction.atomic():
        access.forget_shares(model)
        model.delete()


def get_run(user, model: HostedModel, run_id: int) -> HostedRun:
    run = runs_for(user, model).filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Run {run_id} of '{model.slug}' was not found, or it is not yours.")
    return run


def run_outputs(run: HostedRun) -> list[JobOutput]:
    job = run.job
    if job.routine_version_id is None:  # a jobflow: every node's outputs
        return list(JobOutput.objects.filter(job__flow_run__root=job).order_by("path"))
    return list(JobOutput.objects.filter(job=job).order_by("path"))


def usage(model: HostedModel) -> dict:
    """Runs per version and per user, success rate and median duration (finished runs)."""
    rows = HostedRun.objects.filter(model=model).values_list(
        "version__number", "user__username", "job__status", "job__created_at", "job__finished_at"
    )
    per_version: dict[int, list] = defaultdict(list)
    per_user: dict[str, int] = defaultdict(int)
    for number, username, status, created, finished in rows:
        per_version[number].append((status, created, finished))
        per_user[username] += 1
    return {
        "runs": sum(per_user.values()),
        "versions": [_stats(number, runs) for number, runs in sorted(per_version.items())],
        "users": [{"user": name, "runs": n} for name, n in sorted(per_user.items(), key=lambda kv: (-kv[1], kv[0]))],
        "total": _stats(None, [r for runs in per_version.values() for r in runs]),
    }


def _stats(number, runs: list) -> dict:
    finished = [r for r in runs if r[0] in FINAL]
    succeeded = [r for r in finished if r[0] == Status.SUCCEEDED]
    durations = [(f - c).total_seconds() for _, c, f in succeeded if c and f]
    out = {
        "runs": len(runs),
        "finished": len(finished),
        "succeeded": len(succeeded),
        "success_rate": round(len(succeeded) / len(finished), 3) if finished else None,
        "median_duration_s": round(statistics.median(durations), 3) if durations else None,
    }
    return {"version": number, **out} if number is not None else out
