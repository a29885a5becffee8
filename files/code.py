"""Materialise a routine's code into a local folder: a jobstore manifest, a zip, or a git ref.

`validate_code_source` runs at dispatch time (cheap, no network) so a bad
`repo_url` fails the dispatch instead of the job; `materialize` runs in the
worker. Nothing here writes outside `dest`: manifest and zip paths are
checked, files are created without following symlinks, and git may only use
plain transports (no `ext::` helpers, `file://` only when the operator allows it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from accelerator.errors import InvalidInput
from files import jobstore, storage
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


def materialize(*, project: Project, repo_url: str, repo_branch: str = "", dest: Path) -> dict:
    """Write the code into `dest` and describe where it came from.

    Returns {"kind": "jobstore", "manifest": sha1}, {"kind": "zip", "sha1": sha1}
    or {"kind": "git", "url": url, "commit": full_sha}.
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
    commit = _git_checkout(repo_url, repo_branch, dest)
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


def _git_env() -> dict:
    protocols = "https:http:ssh:git" + (":file" if _git_allow_file() else "")
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL=protocols, GIT_ASKPASS="true")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def _git(
    args: list[str], cwd: Path, *, check: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess:
    timeout = timeout or getattr(settings, "ACC_GIT_TIMEOUT", 600)
    cmd = ["git", "-c", "protocol.ext.allow=never", "-c", "advice.detachedHead=false", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=_git_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"git {args[0]} took longer than {timeout} s.") from None
    if check and proc.returncode != 0:
        raise InvalidInput(f"git {args[0]} failed: {redact(proc.stderr.strip()[-1000:])}")
    return proc


def _git_checkout(url: str, ref: str, dest: Path) -> str:
    """Fetch `ref` of `url` into dest, check it out, drop .git; return the full commit sha."""
    _git(["init", "-q"], dest)
    shallow = _git(["fetch", "-q", "--depth", "1", "--no-tags", "--", url, ref], dest, check=False)
    if shallow.returncode == 0:
        commit = _git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"], dest).stdout.strip()
    else:  # an abbreviated sha, or a server that refuses to serve a commit by id: fetch everything
        _git(["fetch", "-q", "--", url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], dest)
        commit = _resolve_ref(ref, dest)
    _git(["checkout", "-q", "--detach", commit], dest)
    shutil.rmtree(dest / ".git")
    return commit


def remote_commit(repo_url: str, ref: str) -> str | None:
    """The commit `ref` names in the remote repository, without fetching it; None if that cannot be told quickly."""
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref
    try:
        check_git_url(repo_url)
        check_git_ref(ref)
        proc = _git(
            ["ls-remote", "--", repo_url, ref, f"{ref}^{{}}"],
            Path(tempfile.gettempdir()),
            check=False,
            timeout=getattr(settings, "ACC_GIT_LS_REMOTE_TIMEOUT", 5),
        )
    except InvalidInput:
        return None
    if proc.returncode != 0:
        return None
    found = dict(reversed(line.split("\t", 1)) for line in proc.stdout.splitlines() if "\t" in line)
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
        if name in found:
            return found[name]
    return None


def _resolve_ref(ref: str, dest: Path) -> str:
    for candidate in (f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref):
        proc = _git(["rev-parse", "-q", "--verify", f"{candidate}^{{commit}}"], dest, check=False)
        if proc.returncode == 0:
            return proc.stdout.strip()
    raise InvalidInput(f"repo_branch {ref!r} is not a branch, tag or commit of the repository.")
