"""The per-project content-addressed jobstore at `jobstore/<project.id>/<filename>`.

accli uploads a job folder as one blob per file (`cas_<sha1>.blob`) and a
manifest that lists them (`manifest_<sha1>.json`); clients up to 1.1.4 send
one zip (`<sha1>.zip`). Every object is named by the SHA-1 of its bytes, so
`put` checks the name against the content before anything is stored, and a
manifest is accepted only when its paths are safe and all its blobs are here.
Uploads go to our own view through a signed, expiring token, because accli
PUTs the bytes without any credentials.
"""

from __future__ import annotations

import json
import re
import zipfile
from typing import BinaryIO

from django.conf import settings
from django.core import signing
from django.core.files import File

from accelerator.errors import Forbidden, InvalidInput, NotFound
from files import storage
from routines.models import Project

FILENAME_RES = {
    "blob": re.compile(r"^cas_([0-9a-f]{40})\.blob$"),
    "manifest": re.compile(r"^manifest_([0-9a-f]{40})\.json$"),
    "zip": re.compile(r"^([0-9a-f]{40})\.zip$"),
}
FILENAME_SYNTAX = "cas_<40 hex SHA-1>.blob, manifest_<40 hex SHA-1>.json or <40 hex SHA-1>.zip"
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
MANIFEST_MAX_BYTES = 64 * 1024 * 1024
TOKEN_SALT = "files.jobstore.upload"


def parse_filename(filename: str) -> tuple[str, str]:
    """`cas_<sha1>.blob` -> ("blob", sha1); likewise "manifest" and "zip". Anything else is refused."""
    for kind, regex in FILENAME_RES.items():
        match = regex.match(filename or "")
        if match:
            return kind, match.group(1)
    raise InvalidInput(f"Jobstore filename {filename!r} is not valid; expected {FILENAME_SYNTAX} (lower-case hex).")


def _name(project: Project, filename: str) -> str:
    parse_filename(filename)
    return f"{storage.jobstore_root(project)}/{filename}"


def exists(*, project: Project, filename: str) -> bool:
    return storage.backend().exists(_name(project, filename))


def open_object(*, project: Project, filename: str) -> File:
    """An open binary File of a jobstore object; NotFound if it was never uploaded."""
    name = _name(project, filename)
    if not storage.backend().exists(name):
        raise NotFound(f"{filename} is not in the jobstore of project '{project.slug}'; upload it first.")
    return storage.backend().open(name, "rb")


def put(*, project: Project, filename: str, stream: BinaryIO | None, max_bytes: int | None = None) -> bool:
    """Verify and store one object; True when stored now, False when it was already there.

    The bytes are spooled and hashed first; on any mismatch or invalid
    manifest nothing reaches storage.
    """
    kind, expected = parse_filename(filename)
    name = _name(project, filename)
    if storage.backend().exists(name):
        return False  # content-addressed: what is there already has these exact bytes
    limit = settings.ACC_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    if kind == "manifest":
        limit = min(limit, MANIFEST_MAX_BYTES)
    with storage.spool(stream, max_bytes=limit, algorithms=("sha1",)) as spooled:
        actual = spooled.digests["sha1"]
        if actual != expected:
            raise InvalidInput(
                f"SHA-1 mismatch for {filename}: the uploaded bytes hash to {actual}, the name says {expected}. "
                "Nothing was stored."
            )
        if kind == "manifest":
            entries = parse_manifest(spooled.file.read())
            _require_blobs(project, entries)
        elif kind == "zip" and not zipfile.is_zipfile(spooled.file):
            raise InvalidInput(f"{filename} is not a zip archive. Nothing was stored.")
        return storage.save_new(name, spooled.file)


def parse_manifest(raw: bytes) -> list[dict]:
    """Validate manifest bytes; returns the entries [{"path","hash","mode"}]. Raises InvalidInput."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"The manifest is not valid JSON: {exc}.") from None
    if not isinstance(data, dict) or data.get("type") != "cas_manifest" or not isinstance(data.get("files"), list):
        raise InvalidInput('A manifest must be {"type": "cas_manifest", "files": [{"path", "hash", "mode"}, ...]}.')
    seen: set[str] = set()
    for i, entry in enumerate(data["files"]):
        _check_entry(i, entry)
        if entry["path"] in seen:
            raise InvalidInput(f"Manifest files[{i}]: path {entry['path']!r} is listed twice.")
        seen.add(entry["path"])
    _check_no_file_is_a_folder(seen)
    return [{"path": e["path"], "hash": e["hash"], "mode": e["mode"]} for e in data["files"]]


def _check_entry(i: int, entry) -> None:
    if not isinstance(entry, dict):
        raise InvalidInput(f"Manifest files[{i}] must be an object with path, hash and mode.")
    path, sha, mode = entry.get("path"), entry.get("hash"), entry.get("mode")
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"Manifest files[{i}].path must be a non-empty string.")
    if "\x00" in path:
        raise InvalidInput(f"Manifest files[{i}].path contains a NUL byte.")
    if path.startswith("/"):
        raise InvalidInput(f"Manifest files[{i}].path {path!r} is absolute; paths must be relative to the job folder.")
    segments = path.split("/")
    if ".." in segments:
        raise InvalidInput(f"Manifest files[{i}].path {path!r} contains '..'; paths must stay inside the job folder.")
    if "" in segments or "." in segments:
        raise InvalidInput(f"Manifest files[{i}].path {path!r} has an empty or '.' segment; use a plain a/b/c path.")
    if not isinstance(sha, str) or not SHA1_RE.match(sha):
        raise InvalidInput(f"Manifest files[{i}].hash must be a 40-character lower-case hex SHA-1, got {sha!r}.")
    if isinstance(mode, bool) or not isinstance(mode, int) or mode < 0:
        raise InvalidInput(f"Manifest files[{i}].mode must be a non-negative integer (st_mode), got {mode!r}.")


def _check_no_file_is_a_folder(paths: set[str]) -> None:
    for path in paths:
        segments = path.split("/")
        for n in range(1, len(segments)):
            parent = "/".join(segments[:n])
            if parent in paths:
                raise InvalidInput(f"Manifest lists {parent!r} as a file and also {path!r} inside it.")


def _require_blobs(project: Project, entries: list[dict]) -> None:
    missing = sorted({e["hash"] for e in entries if not exists(project=project, filename=f"cas_{e['hash']}.blob")})
    if missing:
        shown = ", ".join(f"cas_{h}.blob" for h in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InvalidInput(f"The manifest references blobs not in the jobstore: {shown}{more}. Upload them first.")


def load_manifest(*, project: Project, sha1: str) -> list[dict]:
    """The validated entries of `manifest_<sha1>.json` in this project's jobstore."""
    with open_object(project=project, filename=f"manifest_{sha1}.json") as fh:
        return parse_manifest(fh.read())


def copy_code(*, source: Project, target: Project, filename: str) -> None:
    """Make a manifest (with its blobs) or a zip of `source`'s jobstore available in `target`'s.

    A hosted model's run lives in the launcher's project but runs the
    author's code. Objects are named by their content, so what `target`
    already has is kept.
    """
    kind, sha1 = parse_filename(filename)
    needed = [filename]
    if kind == "manifest":
        needed = [f"cas_{e['hash']}.blob" for e in load_manifest(project=source, sha1=sha1)] + [filename]
    for name in dict.fromkeys(needed):  # the manifest last: it is valid only once its blobs are there
        if not exists(project=target, filename=name):
            with open_object(project=source, filename=name) as fh:
                storage.save_new(_name(target, name), fh)


def make_upload_token(*, project: Project, filename: str) -> str:
    """A signed token that authorises one PUT of `filename` into this project's jobstore."""
    parse_filename(filename)
    return signing.dumps({"p": project.pk, "f": filename}, salt=TOKEN_SALT)


def check_upload_token(token: str) -> tuple[Project, str]:
    """(project, filename) of a valid token; Forbidden when it is forged or older than ACC_UPLOAD_URL_TTL."""
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=settings.ACC_UPLOAD_URL_TTL)
    except signing.SignatureExpired:
        raise Forbidden(
            f"This upload URL expired (valid for {settings.ACC_UPLOAD_URL_TTL} s); ask for a new one.",
            code="expired",
        ) from None
    except signing.BadSignature:
        raise Forbidden("This upload URL is not valid: its signature does not match.", code="bad_signature") from None
    project = Project.objects.filter(pk=data.get("p")).first()
    if project is None:
        raise NotFound("The project this upload URL was made for no longer exists.")
    parse_filename(data.get("f", ""))
    return project, data["f"]
