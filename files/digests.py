"""Content hashes of project files, cached by (size, modification time).

Used by the build-system cache: a job's identity holds the SHA-256 of every
input file, so editing a file changes the identity of the jobs that read it.
"""

from __future__ import annotations

import hashlib
import os
import posixpath

from files import storage
from files.models import FileDigest
from files.services import clean_relpath, path_kind
from routines.models import Project


def stat_of(name: str) -> tuple[int, float]:
    local = storage._local_path(name)
    if local is not None:
        st = os.stat(local)
        return st.st_size, st.st_mtime
    backend = storage.backend()
    return backend.size(name), backend.get_modified_time(name).timestamp()


def file_digest(name: str) -> str:
    """SHA-256 of storage file `name`; read only when it changed since it was last hashed."""
    size, modified = stat_of(name)
    known = FileDigest.objects.filter(name=name).values_list("size", "modified", "sha256").first()
    if known and known[0] == size and known[1] == modified:
        return known[2]
    hasher = hashlib.sha256()
    with storage.backend().open(name, "rb") as fh:
        while chunk := fh.read(storage.CHUNK):
            hasher.update(chunk)
    sha = hasher.hexdigest()
    FileDigest.objects.update_or_create(
        name=name, defaults={"size": size, "modified": modified, "sha256": sha, "xet_hash": ""}
    )
    return sha


def remember(*, project: Project, relpath: str, sha256: str, xet_hash: str = "") -> None:
    """Record the hash of a file just written (an output, an accli upload), so the next reader need not read it."""
    name = storage.join(storage.project_root(project), clean_relpath(relpath))
    size, modified = stat_of(name)
    FileDigest.objects.update_or_create(
        name=name, defaults={"size": size, "modified": modified, "sha256": sha256, "xet_hash": xet_hash}
    )


def known_xet_hash(name: str) -> tuple[int, str] | None:
    """(size, Xet hash) of storage file `name` when recorded for its current size and modification time."""
    size, modified = stat_of(name)
    known = FileDigest.objects.filter(name=name, size=size, modified=modified).exclude(xet_hash="").first()
    return (size, known.xet_hash) if known else None


def remember_xet_hash(name: str, *, size: int, modified: float, sha256: str, xet_hash: str) -> None:
    """Record both hashes of a stored file as measured while it was read at (size, modified)."""
    FileDigest.objects.update_or_create(
        name=name, defaults={"size": size, "modified": modified, "sha256": sha256, "xet_hash": xet_hash}
    )


def path_digests(*, project: Project, relpath: str) -> dict[str, str] | None:
    """{relative path: sha256} of a file ("" is the file itself) or of every file in a folder; None if absent."""
    relpath = clean_relpath(relpath)
    found = path_kind(project=project, relpath=relpath)
    if found is None:
        return None
    base = storage.join(storage.project_root(project), relpath)
    if found == "file":
        return {"": file_digest(base)}
    return {rel: file_digest(posixpath.join(base, rel)) for rel in sorted(storage.walk_files(base))}
