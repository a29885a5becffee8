"""Runs one job through the phases that do work, in a worker: build, map inputs, start; later map outputs.

A worker starts the job (`run`) and is free as soon as it runs: the wait
belongs to the supervisor (workers.supervisor), which follows every running
job by the engine's events and, once a job ended, has a worker `finish` it:
classify how it ended, map its outputs, clean up and settle it. Every status
change goes through jobs.states.transition, so a cancel or the reconciler
racing with us is settled by compare-and-set, never by overwriting.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from accelerator.crypto import decrypt_json
from backends import get_backend, sockets
from backends.base import NOT_STARTED, Backend, BuildCancelled, BuildFailed, BuildTimedOut, Exit, ImageNotFound
from builds import cache, identity, images
from files import code as code_source
from files import digests
from files import mappings as mapping_syntax
from files import services as file_services
from jobflows import services as flow_services
from jobs import backend_spec, logs, scheduler, sessions
from jobs.models import InteractiveSession, Job, JobOutput
from jobs.states import CANCELLED_MESSAGE, Status, transition
from workers import supervisor
from workers.ending import job_ended

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """A failure the user can read: ends the job FAILED with `error_code` and this message."""

    def __init__(self, message: str, *, error_code: str):
        super().__init__(message)
        self.error_code = error_code


class JobCancelled(Exception):
    pass


@dataclass
class Outcome:
    status: str
    exit_code: int | None = None
    error_code: str = ""
    message: str = ""


class JobRunner:
    def __init__(self, job: Job, backend: Backend | None = None):
        self.job = job
        self.backend = backend or get_backend()
        self.secrets: dict = decrypt_json(job.secrets_encrypted, default={})
        self.writer = logs.LogWriter(job.pk, secrets=self.secrets.values(), log_bytes=job.log_bytes)
        self.spec = job.routine_version.spec
        self.host_dir = backend_spec.job_dir(job.pk)
        self.state: dict | None = None
        self.code_info: dict = {}
        self.input_files: dict[str, dict[str, str]] = {}
        self.pipe_before: dict[str, str] | None = None
        self.image: str | None = None
        self.session: InteractiveSession | None = None
        self.upstream: dict[str, str] | None = None  # parents' cache keys, once read for the lookup
        self._next_beat = 0.0  # when _beat_and_ask next refreshes the heartbeat
        self.session_end = ""  # how an interactive session ended: "stopped", "timeout" or "" (the server exited)
        self._tidy_pending = False  # a jobflow node this runner settled, whose cleanup waits for tidy_up
        self._volume_free = False  # ... and that ended with no node of its run to go on with

    # --- entry point ----------------------------------------------------------
    def run(self) -> int | None:
        """Start the job and return once it runs (the supervisor follows it from there); a job that ends
        before it runs (cached, cancelled, failed to build) is settled here. Returns a jobflow child that became
        ready and this worker may go on with."""
        job = self.job
        needs_build = self.backend.uses_images and self.spec["stack"]["kind"] in ("docker_filename", "base_stack")
        first = Status.BUILDING if needs_build else Status.MAPPING_INPUTS
        if not transition(job.pk, first, reason="picked up by a worker", backend=self.backend.name):
            self.writer.close()
            return None  # somebody else has it, or it was cancelled while queued
        # This job left the start window: the next one may be sent. Before a long phase (a build, inputs to
        # copy) at once; otherwise once this job runs, so that its own start does not wait for the pass.
        quick = not needs_build and not (job.conf or {}).get("input_mappings")
        if not quick:
            scheduler.admit()
        try:
            return self._run(needs_build)
        finally:
            if quick:
                scheduler.admit()

    def _run(self, needs_build: bool) -> int | None:
        job = self.job
        if not job.cache_key and self._answer_from_cache():
            self.writer.close()
            ready = job_ended(job.pk, job.flow_run_id, keep_one=True)
            self._cleanup()
            if job.flow_run_id and ready is None:
                flow_services.release_volume(job.flow_run_id)
            return ready
        try:
            image = self._prepare(needs_build)
            self._map_inputs()
            self._record_identity(image)
            self._start(image)
            return None
        except JobCancelled:
            outcome = self._cancelled()
        except JobFailed as exc:
            outcome = Outcome(Status.FAILED, error_code=exc.error_code, message=str(exc))
        except Exception as exc:  # a bug or a broken engine: say so plainly, keep the trace for operators
            outcome = self._crashed(exc)
        return self._finish(outcome)

    def finish(self, ended: dict) -> int | None:
        """The supervisor saw the job end (`ended`: exit_code, oom_killed, how the platform ended it if it did,
        and the usage it read): classify, map outputs, clean up, settle. Safe to receive twice: only one call
        claims it."""
        job = self.job
        usage = ended.get("usage") or {}  # what the supervisor read of its CPU and memory
        usage_fields = (
            {
                "usage": usage,
                "peak_memory_bytes": usage.get("peak_memory_bytes"),
                "cpu_seconds": usage.get("cpu_seconds"),
            }
            if usage
            else {}
        )
        if not transition(job.pk, Status.MAPPING_OUTPUTS, reason="storing outputs", **usage_fields):
            self.writer.close()
            return None  # settled already (a cancel, or an earlier hand-over)
        self.state = job.backend_state or None
        self.image = job.image or None
        self.session = InteractiveSession.objects.filter(job_id=job.pk).first()
        self.pipe_before = _read_json(self.host_dir / PIPE_BEFORE)
        end = ended.get("end", "")
        if self.session is not None and not end:  # a supervisor that stopped it did not live to say why
            if self.session.stop_requested_at is not None:
                end = "stopped"
            elif self.session.ends_at is not None and self.session.ends_at <= timezone.now():
                end = "timeout"
        if self.session is not None and end in ("stopped", "timeout"):
            self.session_end = end
        try:
            if ended.get("problem"):  # the engine could not start it: an image it cannot pull, no room in time
                problem = ended["problem"]
                code = "start" if problem.startswith(NOT_STARTED) else "image"
                raise JobFailed(f"The cluster cannot start the job: {problem}", error_code=code)
            if end == "lost":
                self._check_cancel()  # a cancel that removed it (a deleted pod) leaves no record of its end
                raise JobFailed(
                    "The job's process ended while no record of how was kept (its container or sandbox is gone); "
                    "its exit status is unknown.",
                    error_code="lost",
                )
            exit_ = Exit(int(ended.get("exit_code", -1)), oom_killed=bool(ended.get("oom_killed")))
            outcome = self._classify(exit_, end == "timeout")
            outcome = self._map_outputs(outcome)
        except JobCancelled:
            outcome = self._cancelled(running=False)  # the supervisor saw it end
        except JobFailed as exc:
            outcome = Outcome(Status.FAILED, error_code=exc.error_code, message=str(exc))
        except Exception as exc:
            outcome = self._crashed(exc)
        return self._finish(outcome, tidy_later=True)

    def _crashed(self, exc: Exception) -> Outcome:
        log.exception("job %s crashed", self.job.pk)
        trace = traceback.format_exc()
        Job.objects.filter(pk=self.job.pk).update(operator_message=trace[-20000:])
        return Outcome(Status.FAILED, error_code="internal", message=f"The platform failed to run this job: {exc}")

    # --- phases ---------------------------------------------------------------
    def _answer_from_cache(self) -> bool:
        """Look up a job that was not looked up at dispatch (a jobflow node, or one whose identity needs git
        or the engine); end it with an identical job's result if there is one. Nothing has started yet."""
        self.upstream = flow_services.upstream_keys(self.job)
        try:
            decision = cache.lookup(self.job, upstream=self.upstream)
        except Exception:
            log.warning("job %s: cache lookup failed; the job runs", self.job.pk, exc_info=True)
            return False
        Job.objects.filter(pk=self.job.pk).update(**decision.fields())
        if decision.origin is None:
            return False
        return cache.settle_reused(self.job, decision.origin, document=decision.document, key=decision.key)

    def _prepare(self, needs_build: bool) -> str | None:
        """Fetch the code and build or resolve the image. Runs in BUILDING or MAPPING_INPUTS."""
        code_dir = self.host_dir / "code"
        code_id = self._fetch_code(code_dir)
        stack = self.spec["stack"]
        if not self.backend.uses_images:
            self.writer.info(
                f"The {self.backend.name} backend runs the command in a sandbox on the host's own system; "
                f"stack {stack['kind']} "
                f"'{stack.get('name') or stack.get('image') or stack.get('dockerfile')}' is not applied."
            )
            return None
        if needs_build:
            build = backend_spec.build_spec_for(self.job, code_dir=code_dir, code_id=code_id)
            try:
                with images.single_flight(
                    build.tag,
                    timeout=build.timeout,
                    should_stop=self._beat_and_ask,
                    on_wait=lambda: self.writer.info(f"Waiting for another job that builds {build.tag}."),
                ):
                    image = self.backend.build(build, log=self.writer.write, should_stop=self._beat_and_ask)
            except BuildCancelled:
                raise JobCancelled from None
            except BuildTimedOut as exc:
                raise JobFailed(
                    f"The image build exceeded its build_timeout of {build.timeout} s. {exc}",
                    error_code="build_timeout",
                ) from None
            except BuildFailed as exc:
                raise JobFailed(f"The image build failed: {exc}", error_code="build") from None
            if not transition(self.job.pk, Status.MAPPING_INPUTS, reason="image built"):
                raise JobCancelled
            return image
        try:
            return self.backend.resolve_image(stack["image"])
        except ImageNotFound as exc:
            raise JobFailed(str(exc), error_code="image") from None

    def _fetch_code(self, code_dir: Path) -> str:
        source = self.spec["code"]
        if source["kind"] == "none":
            return ""
        try:
            info = code_source.materialize(
                project=self.job.project,
                repo_url=source["url"],
                repo_branch=source.get("ref") or "",
                dest=code_dir,
                timeout=self.job.timeout,  # git gets no more time than the job itself
                should_stop=self._cancel_requested,
                tick=lambda: Job.objects.filter(pk=self.job.pk).update(heartbeat_at=timezone.now()),
            )
        except code_source.GitCancelled:
            raise JobCancelled from None
        except Exception as exc:
            raise JobFailed(
                f"Could not fetch the code from {code_source.redact(source['url'])}: {getattr(exc, 'detail', exc)}",
                error_code="code",
            ) from None
        self.code_info = info
        if info.get("commit"):
            Job.objects.filter(pk=self.job.pk).update(code_commit=info["commit"])
            self.writer.info(f"Code: {source['url']} at commit {info['commit']}")
        return info.get("commit") or info.get("manifest") or info.get("sha1") or ""

    def _map_inputs(self) -> None:
        root = self.host_dir / "root"
        root.mkdir(parents=True, exist_ok=True)
        stack = self.spec["stack"]
        code_dir = self.host_dir / "code"
        if code_dir.exists() and (not self.backend.uses_images or stack["kind"] == "docker_image"):
            workdir = backend_spec.workdir_for(stack, uses_images=self.backend.uses_images)
            shutil.copytree(code_dir, root / workdir.lstrip("/"), dirs_exist_ok=True, symlinks=True)
        for pair in self._mappings("input_mappings"):
            try:
                self._place_input(root, pair)
            except Exception as exc:
                raise JobFailed(
                    f"Input mapping {pair.source} -> {pair.destination} failed: {getattr(exc, 'detail', exc)}",
                    error_code="input",
                ) from None
            self.writer.info(f"Input {pair.source} -> {pair.destination}")
        self._check_cancel()

    def _place_input(self, root: Path, pair) -> None:
        project = self.job.project
        relpath = file_services.resolve_acc_url(pair.source, project=project)
        target = root / pair.destination.lstrip("/")
        folder = file_services.is_folder(project=project, relpath=relpath)
        if pair.destination.endswith("/") or folder:
            written = file_services.copy_to_local(project=project, relpath=relpath, dest=target)
        else:
            written = file_services.copy_to_local(
                project=project, relpath=relpath, dest=target.parent, name=target.name
            )
        # what the job really reads, hashed for its cache identity
        hashes = {(p.relative_to(target).as_posix() if folder else ""): file_services.sha256_of(p) for p in written}
        self.input_files[f"{pair.source} -> {pair.destination}"] = dict(sorted(hashes.items()))

    def _record_identity(self, image: str | None) -> None:
        document = cache.identity_of_run(
            self.job,
            backend=self.backend,
            image=image,
            code_info=self.code_info,
            input_files=self.input_files,
            upstream=self.upstream if self.upstream is not None else flow_services.upstream_keys(self.job),
        )
        key = identity.key_of(document)
        Job.objects.filter(pk=self.job.pk).update(identity=document, cache_key=key)
        self.job.cache_key = key

    def _start(self, image: str | None) -> None:
        """Start the job on the backend and hand it to the supervisor."""
        if sockets.is_interactive(self.job.conf):
            self.session = sessions.open_session(self.job)
        job_spec = backend_spec.build_job_spec(
            self.job,
            image=image,
            secrets=self.secrets,
            uses_images=self.backend.uses_images,
            extra_env=sessions.session_env(self.session) if self.session else None,
        )
        self.image = image
        if self.job.flow_run_id and self.spec.get("deterministic") is not False:
            before = self.backend.pipe_digests(job_spec.pipe, image=image)  # to tell what this node adds
            (self.host_dir / PIPE_BEFORE).write_text(json.dumps(before))
        self.writer.begin_close()  # its last lines are stored while the backend starts the job
        try:
            self.state = self.backend.start(job_spec)
        except ValueError as exc:
            raise JobFailed(str(exc), error_code="input") from None
        except ImageNotFound as exc:  # a cluster whose nodes cannot pull it says so only now
            raise JobFailed(str(exc), error_code="image") from None
        if self.session is not None:
            sessions.started(self.session, timeout=job_spec.timeout)
        running = transition(self.job.pk, Status.RUNNING, reason="started", backend_state=self.state, image=image or "")
        self.writer.close()  # its last lines are stored before the supervisor, which writes the log from now on, hears
        if not running:
            self.writer = logs.LogWriter(self.job.pk, secrets=self.secrets.values())
            raise JobCancelled
        supervisor.announce(self.job.pk, self.backend.name)

    def _classify_session(self, exit_: Exit, timed_out: bool) -> Outcome | None:
        """How an interactive session ended, when the platform ended it: a stop is a normal end; at the
        deadline the job succeeds if the server shut down cleanly, else it timed out."""
        if self.session_end == "stopped":
            by = self.session.stopped_by
            who = f" by {by.username}" if by is not None else ""
            return Outcome(Status.SUCCEEDED, exit_code=exit_.exit_code, message=f"The session was stopped{who}.")
        if not timed_out:
            return None
        allowed = self.job.timeout + self.session.extended_seconds
        if exit_.exit_code == 0:
            return Outcome(
                Status.SUCCEEDED, exit_code=0, message=f"The session ended at its time limit of {allowed} s."
            )
        return Outcome(
            Status.TIMED_OUT,
            exit_code=exit_.exit_code,
            error_code="timeout",
            message=f"The session ended at its time limit of {allowed} s (the server exited with {exit_.exit_code}).",
        )

    def _classify(self, exit_: Exit, timed_out: bool) -> Outcome:
        if self._cancel_requested():
            raise JobCancelled
        if self.session is not None:
            ended = self._classify_session(exit_, timed_out)
            if ended is not None:
                return ended
        if timed_out:
            return Outcome(
                Status.TIMED_OUT,
                exit_code=exit_.exit_code,
                error_code="timeout",
                message=f"Stopped after the timeout of {self.job.timeout} s.",
            )
        if exit_.oom_killed:
            mib = self.job.required_ram // 1024**2
            return Outcome(
                Status.FAILED,
                exit_code=exit_.exit_code,
                error_code="oom",
                message=f"Out of memory: the job used more than its {mib} MiB of RAM and was killed. "
                "Ask for more with required_ram.",
            )
        if exit_.exit_code != 0:
            return Outcome(
                Status.FAILED,
                exit_code=exit_.exit_code,
                error_code="exit",
                message=f"The command exited with code {exit_.exit_code}.",
            )
        return Outcome(Status.SUCCEEDED, exit_code=0)

    def _map_outputs(self, outcome: Outcome) -> Outcome:
        """Store output mappings; also after a failure or a timeout, so nothing is lost. Runs in MAPPING_OUTPUTS."""
        if self.job.flow_run_id and self.state:
            outcome = self._check_pipe_size(outcome)
        if self.pipe_before is not None and outcome.status == Status.SUCCEEDED:
            outcome = self._snapshot_pipe(outcome)
        staging = self.host_dir / "outputs"
        for i, pair in enumerate(self._mappings("output_mappings")):
            try:
                relpath = file_services.resolve_acc_url(
                    pair.destination, project=self.job.project
                )  # keeps a trailing /
                dest = staging / str(i)
                if not self.backend.export(self.state, pair.source, dest):
                    raise JobFailed(f"{pair.source} was not created by the command.", error_code="output")
                src = _exported(dest, pair.source)
                stored = file_services.store_from_local(project=self.job.project, src=src, relpath=relpath)
            except Exception as exc:
                text = f"Output mapping {pair.source} -> {pair.destination} failed: {getattr(exc, 'detail', exc)}"
                self.writer.error(text)
                if outcome.status == Status.SUCCEEDED:
                    outcome = Outcome(Status.FAILED, exit_code=outcome.exit_code, error_code="output", message=text)
                continue
            JobOutput.objects.bulk_create(
                [JobOutput(job_id=self.job.pk, path=o["path"], size=o["size"], sha256=o["sha256"]) for o in stored],
                update_conflicts=True,
                unique_fields=["job", "path"],
                update_fields=["size", "sha256"],
            )
            for o in stored:
                digests.remember(project=self.job.project, relpath=o["path"], sha256=o["sha256"])
            self.writer.info(f"Output {pair.source} -> {pair.destination} ({len(stored)} file(s))")
        return outcome

    def _check_pipe_size(self, outcome: Outcome) -> Outcome:
        """The workflow volume may hold at most the node's required_storage_workflow; past it the node fails."""
        limit = self.job.required_storage_workflow
        try:
            used = self.backend.pipe_usage(backend_spec.pipe_name(self.job), image=self.image)
        except Exception:
            log.warning("job %s: cannot measure /mnt/pipe", self.job.pk, exc_info=True)
            return outcome
        if used <= limit or outcome.status != Status.SUCCEEDED:
            return outcome
        text = (
            f"The workflow volume /mnt/pipe holds {used / 1024**2:.1f} MiB, more than this node's "
            f"required_storage_workflow of {limit / 1024**2:.1f} MiB. Ask for more, or leave less in /mnt/pipe."
        )
        self.writer.error(text)
        return Outcome(Status.FAILED, exit_code=outcome.exit_code, error_code="pipe_full", message=text)

    def _snapshot_pipe(self, outcome: Outcome) -> Outcome:
        """Keep what this node wrote to /mnt/pipe, so that a later identical node can be reused."""
        staging = self.host_dir / "pipe-export"
        try:
            self.backend.export(self.state, backend_spec.PIPE_MOUNT + "/", staging)
            cache.save_snapshot(self.job.pk, self.job.cache_key, staging, before=self.pipe_before)
        except Exception as exc:
            log.warning("job %s: /mnt/pipe snapshot failed", self.job.pk, exc_info=True)
            self.writer.info(f"What this node left in /mnt/pipe could not be kept ({exc}); it will not be reused.")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return outcome

    # --- helpers --------------------------------------------------------------
    def _mappings(self, key: str):
        value = (self.job.conf or {}).get(key, "")
        parse = mapping_syntax.parse_input_mappings if key == "input_mappings" else mapping_syntax.parse_output_mappings
        return parse(value) if value else []

    def _beat_and_ask(self) -> bool:
        """Polled during long steps (a build, waiting for another job's build): keep the heartbeat fresh at
        most once per ACC_HEARTBEAT_EVERY; whether someone asked to cancel."""
        if time.monotonic() >= self._next_beat:
            self._next_beat = time.monotonic() + settings.ACC_HEARTBEAT_EVERY
            Job.objects.filter(pk=self.job.pk).update(heartbeat_at=timezone.now())
        return self._cancel_requested()

    def _cancel_requested(self) -> bool:
        return Job.objects.filter(pk=self.job.pk, cancel_requested_at__isnull=False).exists()

    def _check_cancel(self) -> None:
        if self._cancel_requested():
            raise JobCancelled

    def _cancelled(self, *, running: bool = True) -> Outcome:
        """A cancelled job's outcome; one that may still run (`running`) is stopped first."""
        if self.state and running:
            self.backend.stop(self.state, grace=settings.ACC_STOP_GRACE)
        return Outcome(Status.CANCELLED, error_code="cancelled", message=CANCELLED_MESSAGE)

    def _finish(self, outcome: Outcome | None, *, tidy_later: bool = False) -> int | None:
        """Settle the job with `outcome` and move its jobflow on; returns a child this worker may run next.
        With `tidy_later`, a jobflow node's cleanup waits for the caller's `tidy_up` (after that child started)."""
        outcome = outcome or Outcome(Status.FAILED, error_code="internal", message="The job ended without an outcome.")
        if self.session is not None:
            sessions.mark_ended(self.session)
        if outcome.message and outcome.status != Status.SUCCEEDED:
            self.writer.write(f"[{'INFO' if outcome.status == Status.CANCELLED else 'ERROR'}] {outcome.message}\n")
        self.writer.close()
        in_flow = self.job.flow_run_id is not None
        if not in_flow:
            self._cleanup()  # a job that says it ended has left nothing behind
        transition(
            self.job.pk,
            outcome.status,
            reason=outcome.message or "done",
            exit_code=outcome.exit_code,
            error_code=outcome.error_code,
            message=outcome.message,
        )
        ready = job_ended(self.job.pk, self.job.flow_run_id, keep_one=True)
        self._tidy_pending, self._volume_free = in_flow, in_flow and ready is None
        if not tidy_later:
            self.tidy_up()
        close_old_connections()
        return ready

    def tidy_up(self) -> None:
        """A jobflow node's cleanup, after its children were queued: they wait for this node's end, not for its
        container or folder to go."""
        if not self._tidy_pending:
            return  # not settled here, or a single job (cleaned up before it said it ended)
        self._tidy_pending = False
        self._cleanup()
        if self._volume_free:
            flow_services.release_volume(self.job.flow_run_id)

    def _cleanup(self) -> None:
        try:
            if self.state:
                self.backend.cleanup(self.state)
            if not self.job.flow_run_id:  # a jobflow's volume outlives its nodes
                self.backend.remove_pipe(backend_spec.pipe_name(self.job))
        except Exception:
            log.warning("cleanup of job %s failed; the reconciler will retry", self.job.pk, exc_info=True)
        shutil.rmtree(self.host_dir, ignore_errors=True)


PIPE_BEFORE = "pipe-before.json"  # in the job's folder: /mnt/pipe's digests before the node ran


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _exported(dest: Path, container_path: str) -> Path:
    """What export() produced: the folder itself, or the single file it copied."""
    if container_path.endswith("/"):
        return dest
    single = dest / Path(container_path).name
    entries = list(dest.iterdir())
    return single if entries == [single] and single.is_file() else dest
