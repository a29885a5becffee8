"""Materialise a routine's code into a local folder: a jobstore manifest, a zip, or a git ref.

`validate_code_source` runs when a routine is saved or dispatched (no git
call; at most a bounded DNS lookup) so a bad `repo_url` fails there instead of
in the job; `materialize` runs in the worker. Nothing here writes outside
`dest`: manifest and zip paths are checked, files are created without
following symlinks, and git may only use plain transports (no `ext::` helpers,
`file://` only when the operator allows it) towards public addresses (loopback,
private, link-local... only where ACC_GIT_ALLOWED_NETWORKS allows them).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache

from accelerator.errors import InvalidInput
from files import jobstore, netguard, storage
from routines.models import Project

JOBSTORE_SCHEME = "s3accjobstore://"
GIT_URL_RE = re.compile(r"^(https?|ssh|git|file)://(?!-)(?![^/@]*@-)[^\s]+$")  # no host starting with '-'
SCP_URL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:[^\s:-][^\s]*$")
GIT_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,254}$")
CREDENTIALS_RE = re.compile(r"(://)[^/@\s]+@")
GIT_FORMS = "https://host/repo.git, http://..., ssh://..., git://... or user@host:path"


def _git_allow_file() -> bool:
    return bool(getattr(settings, "ACC_GIT_ALLOW_FILE", False))


def parse_jobstore_url(repo_url: str) -> tuple[str, str, str]:
    """`s3accjobstore://manifest_<sha1>.json` -> ("manifest", sha1, filename); likewise "zip"."""
    filename = repo_url[len(JOBSTORE_SCHEME) :]
    kind, sha1 = jobstore.parse_filename(filename)
    if kind == "blob":
        raise InvalidInput(
            f"repo_url {repo_url} names a single blob; it must name a manifest_<sha1>.json or <sha1>.zip."
        )
    return kind, sha1, filename


def check_git_url(url: str) -> None:
    """Refuse anything but plain git transports; `file://` only with settings.ACC_GIT_ALLOW_FILE."""
    if not isinstance(url, str) or not url or url.startswith("-") or any(ord(c) < 32 for c in url):
        raise InvalidInput(f"repo_url {url!r} is not a git URL; use {GIT_FORMS}.")
    if "::" in url.split("/", 1)[0] or url.split(":", 1)[0] in ("ext", "fd"):
        raise InvalidInput(f"repo_url {redact(url)} uses a git remote helper; use {GIT_FORMS}.")
    match = GIT_URL_RE.match(url)
    if match:
        if match.group(1) == "file" and not _git_allow_file():
            raise InvalidInput("file:// repositories are disabled on this platform; use a remote git URL.")
        return
    if not SCP_URL_RE.match(url):
        raise InvalidInput(f"repo_url {redact(url)} is not a supported git URL; use {GIT_FORMS}.")


def check_git_ref(ref: str) -> None:
    if not ref:
        raise InvalidInput("repo_branch (a branch, tag or commit) is required with a git repo_url.")
    if not isinstance(ref, str) or not GIT_REF_RE.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise InvalidInput(f"repo_branch {ref!r} is not a valid branch, tag or commit name.")


def redact(url: str) -> str:
    """Hide credentials embedded in a URL (https://user:token@host) before it is shown or logged."""
    return CREDENTIALS_RE.sub(r"\1***@", url)


def validate_code_source(*, project: Project, repo_url: str, repo_branch: str = "") -> None:
    """Check at dispatch time that `repo_url` can be materialised; jobstore objects must already be uploaded."""
    if not isinstance(repo_url, str) or not repo_url:
        raise InvalidInput("repo_url must be a non-empty string.")
    if repo_url.startswith(JOBSTORE_SCHEME):
        _, _, filename = parse_jobstore_url(repo_url)
        if not jobstore.exists(project=project, filename=filename):
            raise InvalidInput(
                f"{filename} is not in the jobstore of project '{project.slug}'; upload it first "
                "(accli uploads the job folder when it builds the task)."
            )
        return
    check_git_url(repo_url)
    check_git_ref(repo_branch)
    check_git_address(repo_url, unresolved_ok=True)


def materialize(
    *,
    project: Project,
    repo_url: str,
    repo_branch: str = "",
    dest: Path,
    timeout: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> dict:
    """Write the code into `dest` and describe where it came from.

    Returns {"kind": "jobstore", "manifest": sha1}, {"kind": "zip", "sha1": sha1}
    or {"kind": "git", "url": url, "commit": full_sha}. A git checkout takes at
    most ACC_GIT_TIMEOUT seconds (and at most `timeout`), raising GitTimedOut;
    `should_stop` is asked twice a second (True: GitCancelled) and `tick` is
    called every ACC_HEARTBEAT_EVERY seconds while git runs (a job's heartbeat).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if repo_url.startswith(JOBSTORE_SCHEME):
        kind, sha1, _ = parse_jobstore_url(repo_url)
        if kind == "manifest":
            _materialize_manifest(project, sha1, dest)
            return {"kind": "jobstore", "manifest": sha1}
        _materialize_zip(project, sha1, dest)
        return {"kind": "zip", "sha1": sha1}
    check_git_url(repo_url)
    check_git_ref(repo_branch)
    commit = _git_checkout(repo_url, repo_branch, dest, timeout=timeout, should_stop=should_stop, tick=tick)
    return {"kind": "git", "url": redact(repo_url), "commit": commit}


# --- jobstore ---------------------------------------------------------------------------------------------------


def _safe_target(dest: Path, relpath: str) -> Path:
    """dest/relpath, refusing absolute paths, '..' and parents that resolve outside dest (symlinks)."""
    pure = PurePosixPath(relpath)
    if not relpath or pure.is_absolute() or ".." in pure.parts or "\x00" in relpath:
        raise InvalidInput(f"Refusing to write {relpath!r}: it is not a path inside the job folder.")
    target = dest.joinpath(*pure.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(dest.resolve()):
        raise InvalidInput(f"Refusing to write {relpath!r}: it leads outside the job folder.")
    return target


def _create(target: Path, mode: int):
    """Open a new regular file for writing without following a symlink at `target`."""
    if target.is_symlink():
        target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, mode)
    return os.fdopen(fd, "wb")


def _materialize_manifest(project: Project, sha1: str, dest: Path) -> None:
    for entry in jobstore.load_manifest(project=project, sha1=sha1):
        target = _safe_target(dest, entry["path"])
        with jobstore.open_object(project=project, filename=f"cas_{entry['hash']}.blob") as blob:
            with _create(target, entry["mode"] & 0o777) as out:
                while chunk := blob.read(storage.CHUNK):
                    out.write(chunk)


def _materialize_zip(project: Project, sha1: str, dest: Path) -> None:
    with tempfile.TemporaryFile() as tmp:
        with jobstore.open_object(project=project, filename=f"{sha1}.zip") as src:
            while chunk := src.read(storage.CHUNK):
                tmp.write(chunk)
        tmp.seek(0)
        try:
            with zipfile.ZipFile(tmp) as archive:
                _extract(archive, dest)
        except zipfile.BadZipFile as exc:
            raise InvalidInput(f"{sha1}.zip is not a readable zip archive: {exc}.") from None


def _extract(archive: zipfile.ZipFile, dest: Path) -> None:
    """Like ZipFile.extractall, but refuses unsafe names and caps the unpacked size."""
    budget = settings.ACC_MAX_UPLOAD_BYTES
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        if name.endswith("/"):
            continue
        if re.match(r"^[A-Za-z]:", name):
            raise InvalidInput(f"Refusing zip member {info.filename!r}: it has a drive letter.")
        target = _safe_target(dest, name)
        mode = (info.external_attr >> 16) & 0o777 or 0o644
        with archive.open(info) as src, _create(target, mode) as out:
            while chunk := src.read(storage.CHUNK):
                budget -= len(chunk)
                if budget < 0:
                    raise InvalidInput(f"The zip unpacks to more than {settings.ACC_MAX_UPLOAD_BYTES} bytes.")
                out.write(chunk)


# --- git --------------------------------------------------------------------------------------------------------
#
# Every git call that touches the network first resolves the remote's host and checks each of its addresses
# (files.netguard), then connects to exactly that address: http(s) through a curl resolve entry, ssh through
# `-o Hostname=`, git:// by putting the address in the URL. Redirects, proxies from the environment and every
# transport but the URL's own are off. Each call runs in a process group of its own, bounded by one deadline
# (ACC_GIT_TIMEOUT, and the job's own timeout); on expiry or cancel the whole group is killed.

_POLL = 0.5  # seconds between looks at a running git (cancel requests)
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}


class GitCancelled(Exception):
    """The caller asked to stop while git ran; git and everything it started are gone."""


class GitTimedOut(InvalidInput):
    """A git call did not finish within its deadline; git and everything it started are gone."""


@dataclass(frozen=True)
class _Remote:
    """How git is told to reach a remote whose address was checked."""

    url: str  # the URL git is given (the checked address in place of the host for git://)
    scheme: str  # the only transport git may use
    config: tuple[str, ...] = ()  # extra `-c name=value` pairs
    ssh_command: str = ""


def _allowed_networks() -> netguard.Allowed:
    return netguard.Allowed.parse(getattr(settings, "ACC_GIT_ALLOWED_NETWORKS", []) or [])


def _resolve_timeout() -> float:
    return float(getattr(settings, "ACC_GIT_RESOLVE_TIMEOUT", 3.0))


def _host_and_port(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a checked git URL; None for file://."""
    match = GIT_URL_RE.match(url)
    if match is None:  # user@host:path, git's scp-like ssh form
        return "ssh", url.split("@", 1)[1].split(":", 1)[0], 22
    scheme = match.group(1)
    if scheme == "file":
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise InvalidInput(f"repo_url {redact(url)} has an invalid host or port: {exc}.") from None
    return scheme, host, port


def check_git_address(url: str, *, timeout: float | None = None, unresolved_ok: bool = False) -> netguard.Target | None:
    """Resolve the host of git URL `url` and refuse it if it is not a public address (nor allowed by the operator).

    `unresolved_ok` (save time): a host name that does not resolve now is let through; the worker checks it
    again right before it connects. Returns the checked target, None for file:// or an unresolved name.
    """
    where = _host_and_port(url)
    if where is None:
        return None
    _, host, port = where
    try:
        return netguard.check(host, port, allowed=_allowed_networks(), timeout=timeout or _resolve_timeout())
    except netguard.Unresolved as exc:
        if unresolved_ok:
            return None
        raise InvalidInput(f"repo_url {redact(url)}: {exc}.") from None
    except netguard.Refused as exc:
        raise InvalidInput(f"repo_url {redact(url)}: {exc}.", code="address_refused") from None


def _pinned(url: str, *, timeout: float | None = None) -> _Remote:
    """Check `url` and describe how git reaches exactly the address that was checked."""
    check_git_url(url)
    target = check_git_address(url, timeout=timeout)
    if target is None:  # file://, allowed by check_git_url
        return _Remote(url=url, scheme="file")
    scheme = _host_and_port(url)[0]
    if scheme in ("http", "https"):
        resolve = f"http.curloptResolve={target.host}:{target.port}:{target.bracketed}"
        return _Remote(url=url, scheme=scheme, config=("-c", resolve, "-c", "http.followRedirects=false"))
    if scheme == "git":
        parts = urlsplit(url)
        netloc = f"{target.bracketed}:{target.port}"
        return _Remote(url=parts._replace(netloc=netloc).geturl(), scheme=scheme)
    base = os.environ.get("GIT_SSH_COMMAND") or "ssh"
    options = [
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10",
        "-o", f"Hostname={target.address}",
        "-o", f"HostKeyAlias={target.host}",
        "-o", "ProxyCommand=none",
        "-o", "ProxyJump=none",
    ]  # fmt: skip
    return _Remote(url=url, scheme="ssh", ssh_command=" ".join([base, *map(shlex.quote, options)]))


def _git_env(remote: _Remote | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES and k != "GIT_PROXY_COMMAND"}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", GIT_ALLOW_PROTOCOL=remote.scheme if remote else "file")
    if remote and remote.ssh_command:
        env["GIT_SSH_COMMAND"] = remote.ssh_command
    env.pop("GIT_SSH", None)
    return env


@dataclass
class _Budget:
    """One deadline for all the git calls of a checkout, and what to do while they run."""

    seconds: float
    what: str  # "clone of <url>", for messages
    should_stop: Callable[[], bool] | None = None
    tick: Callable[[], None] | None = None

    def __post_init__(self):
        self.deadline = time.monotonic() + self.seconds


def _git(
    args: list[str], cwd: Path, *, budget: _Budget, remote: _Remote | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    cmd = [
        "git",
        "-c", "protocol.ext.allow=never",
        "-c", "advice.detachedHead=false",
        "-c", "http.proxy=",
        "-c", "core.gitProxy=",
        *(remote.config if remote else ()),
        *args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=_git_env(remote),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # git, its remote helpers and ssh share one process group: killed as one
    )
    tick_every = float(getattr(settings, "ACC_HEARTBEAT_EVERY", 5.0))  # `tick` refreshes a job's heartbeat
    next_tick = time.monotonic() + tick_every
    try:
        while True:
            remaining = budget.deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                raise GitTimedOut(f"git {budget.what} did not finish in {budget.seconds:g} s", code="git_timeout")
            try:
                stdout, stderr = proc.communicate(timeout=min(remaining, _POLL))
                break
            except subprocess.TimeoutExpired:
                pass
            if budget.should_stop is not None and budget.should_stop():
                _kill_group(proc)
                raise GitCancelled(f"git {budget.what} was stopped: the job was cancelled")
            if budget.tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick_every
                budget.tick()
    except BaseException:
        _kill_group(proc)
        raise
    result = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise InvalidInput(f"git {args[0]} failed: {redact(stderr.strip()[-1000:])}")
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL git's whole process group (it leads it until reaped, so the id cannot be someone else's)."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass


def _budget_seconds(timeout: float | None) -> float:
    limit = float(getattr(settings, "ACC_GIT_TIMEOUT", 600))
    return min(limit, float(timeout)) if timeout else limit


def _git_checkout(
    url: str,
    ref: str,
    dest: Path,
    *,
    timeout: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> str:
    """Fetch `ref` of `url` into dest, check it out, drop .git; return the full commit sha."""
    budget = _Budget(_budget_seconds(timeout), f"clone of {redact(url)}", should_stop, tick)
    remote = _pinned(url, timeout=min(_resolve_timeout(), budget.seconds))
    _git(["init", "-q"], dest, budget=budget)
    shallow = _git(
        ["fetch", "-q", "--depth", "1", "--no-tags", "--", remote.url, ref],
        dest,
        budget=budget,
        remote=remote,
        check=False,
    )
    if shallow.returncode == 0:
        commit = _git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"], dest, budget=budget).stdout.strip()
    else:  # an abbreviated sha, or a server that refuses to serve a commit by id: fetch everything
        refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        _git(["fetch", "-q", "--", remote.url, *refspecs], dest, budget=budget, remote=remote)
        commit = _resolve_ref(ref, dest, budget)
    _git(["checkout", "-q", "--detach", commit], dest, budget=budget)
    shutil.rmtree(dest / ".git")
    return commit


def _slow_key(url: str) -> str:
    return "acc:git-slow:" + hashlib.sha256(redact(url).encode()).hexdigest()


def remote_commit(repo_url: str, ref: str) -> str | None:
    """The commit `ref` names in the remote repository, without fetching it; None if that cannot be told quickly.

    Runs at dispatch in a web thread: the address check and `git ls-remote` together take at most
    ACC_GIT_LS_REMOTE_TIMEOUT, and a remote that ran out of that time is not asked again for
    ACC_GIT_SLOW_REMOTE_TTL seconds (its jobs simply run; the worker records the commit).
    """
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref
    seconds = float(getattr(settings, "ACC_GIT_LS_REMOTE_TIMEOUT", 3))
    if cache.get(_slow_key(repo_url)):
        return None
    budget = _Budget(seconds, f"ls-remote of {redact(repo_url)}")
    try:
        check_git_ref(ref)
        remote = _pinned(repo_url, timeout=min(_resolve_timeout(), seconds))
        proc = _git(
            ["ls-remote", "--", remote.url, ref, f"{ref}^{{}}"],
            Path(tempfile.gettempdir()),
            budget=budget,
            remote=remote,
            check=False,
        )
    except GitTimedOut:
        cache.set(_slow_key(repo_url), 1, timeout=int(getattr(settings, "ACC_GIT_SLOW_REMOTE_TTL", 300)))
        return None
    except InvalidInput:
        return None
    if proc.returncode != 0:
        return None
    found = dict(reversed(line.split("\t", 1)) for line in proc.stdout.splitlines() if "\t" in line)
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
        if name in found:
            return found[name]
    return None


def _resolve_ref(ref: str, dest: Path, budget: _Budget) -> str:
    for candidate in (f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref):
        proc = _git(["rev-parse", "-q", "--verify", f"{candidate}^{{commit}}"], dest, budget=budget, check=False)
        if proc.returncode == 0:
            return proc.stdout.strip()
    raise InvalidInput(f"repo_branch {ref!r} is not a branch, tag or commit of the repository.")
