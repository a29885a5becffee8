"""The build-system cache: a job runs only if no identical job succeeded before.

`lookup()` computes a job's identity from what can be known without running
it (image digest from the engine, code hash from its jobstore name or the
git commit the remote names, input hashes from the digest cache, upstream
keys) and finds either a SUCCEEDED job to reuse or a live one to join.
At dispatch it runs with `remote=False`: a web request never asks git or the
container engine, so a job whose identity needs them is looked up again by
the worker that takes it (as is every jobflow node, once its parents ended).
`settle_reused()` ends a job as a copy of its original: its outputs are put
in place, what a jobflow node left in /mnt/pipe is restored, and no container
starts. The worker records the identity of what it really ran
(`identity_of_run`), so the keys stored with jobs always describe the result.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accelerator.crypto import decrypt_json, hashing_key
from backends import get_backend
from backends.sockets import is_interactive
from builds import identity
from files import code as code_source
from files import digests, storage
from files import mappings as mapping_syntax
from files import services as file_services
from jobs import backend_spec, logs
from jobs import permissions as job_permissions
from jobs.models import Job, JobOutput
from jobs.services import enqueue
from jobs.states import ACTIVE, Status, transition

log = logging.getLogger(__name__)

LIVE = (Status.QUEUED, *ACTIVE)


@dataclass
class Decision:
    document: dict | None = None
    key: str = ""
    origin: Job | None = None  # a SUCCEEDED job to return instead of running
    live: Job | None = None  # an identical job still running, to wait for
    note: str = ""
    deferred: bool = False  # the worker that takes the job looks it up (git or the engine is needed)

    def fields(self) -> dict:
        """The cache columns of the job this decision is about."""
        return {"identity": self.document, "cache_key": self.key, "cache_note": self.note[:500]}


class Unknown(Exception):
    """Part of the identity cannot be known before the job runs; the job runs and its identity is recorded then."""


class Remote(Unknown):
    """Part of the identity needs git or the container engine, which only a worker asks."""


# --- identity -----------------------------------------------------------------------
def _stack_part(spec: dict, backend, code_part: dict, *, remote: bool) -> dict:
    stack = spec["stack"]
    if not backend.uses_images:
        return {"kind": "host", "definition": stack}
    if not remote:
        raise Remote("the image's digest is asked of the container engine")
    if stack["kind"] == "docker_image":
        digest = backend.lookup_image(stack["image"])
        if not digest:
            raise Unknown(f"the image {stack['image']} is not on the engine yet")
        return {"kind": "image", "digest": digest}
    tag = backend_spec.build_tag(stack, _code_id(code_part))
    digest = backend.lookup_image(tag)
    if not digest:
        raise Unknown("the stack's image has not been built yet")
    return {"kind": "built", "digest": digest}


def _code_id(code_part: dict) -> str:
    return code_part.get("commit") or code_part.get("manifest") or code_part.get("sha1") or ""


def _code_part(project, spec: dict, *, remote: bool) -> dict:
    source = spec["code"]
    if source["kind"] == "none":
        return {"kind": "none"}
    if source["kind"] == "jobstore":
        kind, sha1, _ = code_source.parse_jobstore_url(source["url"])
        return {"kind": "jobstore", "manifest": sha1} if kind == "manifest" else {"kind": "zip", "sha1": sha1}
    if not remote:
        raise Remote(f"the commit of {code_source.redact(source['url'])} at {source.get('ref')} is asked of git")
    commit = code_source.remote_commit(source["url"], source.get("ref") or "")
    if not commit:
        raise Unknown(f"the commit of {code_source.redact(source['url'])} at {source.get('ref')} could not be resolved")
    return {"kind": "git", "url": code_source.redact(source["url"]), "commit": commit}


def _inputs_part(project, conf: dict) -> dict:
    found = {}
    for pair in mapping_syntax.parse_input_mappings(conf.get("input_mappings", "") or ""):
        relpath = file_services.resolve_acc_url(pair.source, project=project)
        hashes = digests.path_digests(project=project, relpath=relpath.rstrip("/"))
        if hashes is None:
            raise Unknown(f"the input {pair.source} does not exist")
        found[f"{pair.source} -> {pair.destination}"] = hashes
    return found


def build_document(*, job_like, backend, stack: dict, code: dict, inputs: dict, upstream: dict) -> dict:
    spec = job_like.routine_version.spec
    secrets = decrypt_json(job_like.secrets_encrypted, default={})
    return identity.document(
        backend=backend.name,
        stack=stack,
        code=code,
        command=spec["command"],
        workdir=backend_spec.workdir_for(spec["stack"], uses_images=backend.uses_images),
        conf=identity.fill_defaults(job_like.conf or {}, spec.get("conf_schema")),
        inputs=inputs,
        upstream=upstream,
        secrets=identity.secrets_digest(secrets, key=hashing_key()),
    )


# --- lookup at dispatch --------------------------------------------------------------
def lookup(job: Job, *, upstream: dict[str, str] | None = None, remote: bool = True) -> Decision:
    """What the cache says about `job` (not saved yet, PENDING or just taken by a worker): reuse, join, or run.

    With `remote=False` (at dispatch) nothing asks git or the engine: a job
    whose identity needs them gets `Decision.deferred` and is looked up by its
    worker.
    """
    spec = job.routine_version.spec
    never = never_reused(job)
    if never:
        return Decision(note=never)
    backend = get_backend()
    try:
        if upstream and not all(upstream.values()):
            raise Unknown("an upstream node has no recorded identity")
        code = _code_part(job.project, spec, remote=remote)
        document = build_document(
            job_like=job,
            backend=backend,
            stack=_stack_part(spec, backend, code, remote=remote),
            code=code,
            inputs=_inputs_part(job.project, job.conf or {}),
            upstream=upstream or {},
        )
    except Remote as exc:
        return Decision(note=f"Looked up when a worker takes the job: {exc}.", deferred=True)
    except Unknown as exc:
        return Decision(note=f"Not looked up before running: {exc}; the identity is recorded when the job runs.")
    key = identity.key_of(document)
    decision = Decision(document=document, key=key)
    decision.origin, decision.note = _find_origin(job, key)
    if decision.origin is None and not job.flow_run_id:
        decision.live = _find_live(job, key)
        if decision.live is not None:
            decision.note = f"Joined identical job #{decision.live.pk}, which was still running."
    return decision


def never_reused(job: Job) -> str:
    """Why `job` always runs (never answered from the cache nor joined), or "" when it may be."""
    if job.routine_version.spec.get("deterministic") is False:
        return "The routine is declared non-deterministic: its jobs always run."
    if is_interactive(job.conf):
        return "An interactive session is never reused or joined: each dispatch runs its own server."
    if job.force_build:
        return "force_build (no_cache) was set: the job runs even if an identical one succeeded."
    return ""


def _readable(user, jobs) -> list[Job]:
    return [j for j in jobs if job_permissions.can_read_job(user, j)]


def _find_origin(job: Job, key: str) -> tuple[Job | None, str]:
    """The newest SUCCEEDED job that ran with `key`, that the user may read and whose results are intact."""
    candidates = (
        Job.objects.filter(cache_key=key, status=Status.SUCCEEDED, reused_from__isnull=True)
        .select_related("project")
        .order_by("-finished_at")[:10]
    )
    refused = []
    for candidate in _readable(job.user, candidates):
        problem = _results_missing(candidate)
        if problem is None:
            return candidate, f"Reused job #{candidate.pk}: it has the same identity."
        refused.append(f"#{candidate.pk} ({problem})")
    if refused:
        return None, f"Identical jobs could not be reused: {'; '.join(refused)}."
    return None, "No earlier successful job with this identity that you may read."


def _results_missing(original: Job) -> str | None:
    """Why `original`'s results can no longer be handed out, or None when they are all in place."""
    root = storage.project_root(original.project)
    for out in JobOutput.objects.filter(job=original):
        try:
            current = digests.file_digest(storage.join(root, out.path))
        except (FileNotFoundError, OSError):
            return f"its output {out.path} was deleted"
        if current != out.sha256:
            return f"its output {out.path} changed since"
    if original.flow_run_id and not snapshot_path(original.pk, original.cache_key).exists():
        return "what it left in /mnt/pipe is no longer kept"
    return None


def _find_live(job: Job, key: str) -> Job | None:
    live = Job.objects.filter(cache_key=key, status__in=LIVE).select_related("project").order_by("pk")[:10]
    return next(iter(_readable(job.user, live)), None)


# --- settling a job from the cache ---------------------------------------------------
def settle_reused(job: Job, origin: Job, *, document: dict | None = None, key: str = "") -> bool:
    """End `job` (QUEUED or PENDING) as SUCCEEDED with `origin`'s results; no container starts."""
    try:
        _put_outputs_in_place(job, origin)
        if job.flow_run_id:
            restore_snapshot(job, origin)
    except Exception as exc:
        log.warning("reuse of job %s for job %s failed", origin.pk, job.pk, exc_info=True)
        Job.objects.filter(pk=job.pk).update(cache_note=f"Reusing job #{origin.pk} failed ({exc}); the job runs."[:500])
        return False
    saved = run_seconds(origin) or 0.0
    text = (
        f"[INFO] Reused the result of job #{origin.pk} (identity {key or origin.cache_key}); no container was started."
        f" Time saved: {saved:.1f} s.\n"
    )
    logs.append(job.pk, text, empty=job.log_bytes == 0)
    return transition(
        job.pk,
        Status.SUCCEEDED,
        reason=f"reused the result of job #{origin.pk}",
        reused_from=origin,
        exit_code=0,
        identity=document or origin.identity,
        cache_key=key or origin.cache_key,
        backend=origin.backend,
        image=origin.image,
        code_commit=origin.code_commit,
        peak_memory_bytes=origin.peak_memory_bytes,
    )


def run_seconds(job: Job) -> float | None:
    """How long `job` took from its first phase to its end (what reusing it saves); None if unknown."""
    start = job.building_at or job.mapping_inputs_at or job.running_at
    return (job.finished_at - start).total_seconds() if start and job.finished_at else None


def _put_outputs_in_place(job: Job, origin: Job) -> None:
    outputs = list(JobOutput.objects.filter(job=origin))
    if origin.project_id != job.project_id:  # the original wrote into its own project: copy into this one
        source_root, target_root = storage.project_root(origin.project), storage.project_root(job.project)
        for out in outputs:
            with storage.backend().open(storage.join(source_root, out.path), "rb") as fh:
                storage.replace(storage.join(target_root, out.path), fh)
    JobOutput.objects.bulk_create(
        [JobOutput(job_id=job.pk, path=o.path, size=o.size, sha256=o.sha256) for o in outputs]
    )


# --- jobflow nodes: what they leave in /mnt/pipe -------------------------------------
def snapshot_path(job_id: int, key: str) -> Path:
    return settings.ACC_SNAPSHOTS_DIR / f"{job_id}-{key[:24]}.tar"


def save_snapshot(job_id: int, key: str, exported: Path, *, before: dict[str, str]) -> Path:
    """Keep the files a node wrote to /mnt/pipe: those in `exported` (the volume after it ran) that are new or
    whose content differs from `before` ({path: sha256} when it started)."""
    target = snapshot_path(job_id, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    seen: dict[str, str | None] = {}  # each kept file -> what the volume held there when the node started
    with tarfile.open(partial, "w") as tar:
        for root, dirs, names in os.walk(exported):
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                if not path.is_file() or path.is_symlink():
                    continue
                relpath = path.relative_to(exported).as_posix()
                if before.get(relpath) != file_services.sha256_of(path):
                    tar.add(path, arcname=relpath, recursive=False)
                    seen[relpath] = before.get(relpath)
    _seen_path(target).write_text(json.dumps(seen))
    partial.replace(target)
    return target


def restore_snapshot(job: Job, origin: Job) -> None:
    """Put back in the run's volume what `origin` left there, where the volume still holds what `origin` found.

    A file that is already different (a sibling node running at the same time
    wrote it, and the original's snapshot caught that sibling's older copy) is
    left alone, so a reused node never overwrites a neighbour's fresh output.
    """
    archive = snapshot_path(origin.pk, origin.cache_key)
    if not archive.exists():
        raise FileNotFoundError(f"the /mnt/pipe snapshot of job #{origin.pk} is gone")
    backend, pipe, image = get_backend(), job.flow_run.pipe, origin.image or None
    seen_file = _seen_path(archive)
    if not seen_file.exists():  # a snapshot from before the rule: all of it
        backend.load_pipe(pipe, archive, image=image)
        return
    seen = json.loads(seen_file.read_text())
    now = backend.pipe_digests(pipe, image=image)
    wanted = {relpath for relpath, sha in seen.items() if now.get(relpath) == sha}
    if wanted == set(seen):
        backend.load_pipe(pipe, archive, image=image)
        return
    with tempfile.NamedTemporaryFile(dir=archive.parent, suffix=".tar") as part:
        with tarfile.open(archive) as source, tarfile.open(fileobj=part, mode="w") as tar:
            for member in source:
                if member.name in wanted:
                    tar.addfile(member, source.extractfile(member))
        part.flush()
        backend.load_pipe(pipe, Path(part.name), image=image)


def _seen_path(archive: Path) -> Path:
    return archive.with_suffix(".seen.json")


# --- joined jobs ---------------------------------------------------------------------
def release_joiners(job_id: int) -> None:
    """`job_id` ended: jobs that waited for it get its result, or run themselves if it did not succeed."""
    waiting = list(
        Job.objects.filter(reused_from_id=job_id, status=Status.PENDING, flow_run__isnull=True).select_related(
            "project", "routine_version"
        )
    )
    if not waiting:
        return  # most jobs: one query
    original = Job.objects.select_related("project").filter(pk=job_id).first()
    if original is None or original.status in (Status.PENDING, *LIVE):
        return
    for job in waiting:
        if original.status == Status.SUCCEEDED and settle_reused(job, original):
            continue
        Job.objects.filter(pk=job.pk).update(
            reused_from=None,
            cache_note=f"Identical job #{original.pk} ended {original.status}; this job ran itself.",
        )
        if transition(job.pk, Status.QUEUED, reason=f"identical job #{original.pk} ended {original.status}"):
            transaction.on_commit(lambda pk=job.pk: enqueue(pk))


def release_stale_joiners() -> int:
    """Safety net for the reconciler: joiners whose original ended without releasing them."""
    ended = (
        Job.objects.filter(status=Status.PENDING, flow_run__isnull=True, reused_from__isnull=False)
        .exclude(reused_from__status__in=(Status.PENDING, *LIVE))
        .values_list("reused_from_id", flat=True)
        .distinct()
    )
    ids = list(ended)
    for job_id in ids:
        release_joiners(job_id)
    return len(ids)


# --- what a worker really ran --------------------------------------------------------
def identity_of_run(
    job: Job, *, backend, image: str | None, code_info: dict, input_files: dict, upstream: dict[str, str]
) -> dict:
    """The identity document of what the worker actually used; `input_files` maps mapping -> {rel: sha256},
    `upstream` node id -> cache key of a jobflow node's parents."""
    spec = job.routine_version.spec
    if not backend.uses_images:
        stack = {"kind": "host", "definition": spec["stack"]}
    else:
        stack = {"kind": "image" if spec["stack"]["kind"] == "docker_image" else "built", "digest": image}
    code = {"kind": "none"}
    if code_info:
        code = {k: v for k, v in code_info.items() if k in ("kind", "manifest", "sha1", "url", "commit")}
    return build_document(job_like=job, backend=backend, stack=stack, code=code, inputs=input_files, upstream=upstream)
