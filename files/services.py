"""Project files: every read and write of `projects/<project.id>/` in storage starts here.

Paths given to these functions are relative to the project's root and are
checked by `clean_relpath`, so nothing here can reach another project's
files. `acc://` URLs from mappings are turned into such paths by
`resolve_acc_url`.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File

from accelerator.errors import Conflict, InvalidInput, NotFound
from files import storage
from routines.models import Project

ACC_PREFIX = "acc://"
MAX_PATH = 1024
MAX_NAME = 255


def clean_relpath(path: str) -> str:
    """Normalise a path relative to a project root; "" is the root. Refuses anything that could escape it."""
    if not isinstance(path, str):
        raise InvalidInput("A file path must be a string.")
    if any(ord(c) < 32 for c in path):
        raise InvalidInput("The path contains a NUL byte or another control character.")
    if "\\" in path:
        raise InvalidInput(f"Path {path!r} contains a backslash; separate folders with '/'.")
    if path.startswith("/"):
        raise InvalidInput(f"Path {path!r} is absolute; give a path relative to the project root, e.g. 'data/x.csv'.")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"Path {path!r} contains '..'; paths must stay inside the project.")
    if len(path) > MAX_PATH or any(len(p.encode()) > MAX_NAME for p in parts):
        raise InvalidInput(f"Path {path[:80]!r}... is too long: at most {MAX_PATH} characters, {MAX_NAME} per name.")
    return "/".join(parts)


def resolve_acc_url(url: str, *, project: Project) -> str:
    """`acc://...` -> a path relative to `project`'s root; a trailing '/' (a folder) is kept.

    `acc://<project.slug>/<path>` and `acc://<path>` both name `<path>` in this
    project. A first segment that is another project's slug is refused: jobs
    read and write only their own project's files.
    """
    if not isinstance(url, str) or not url.startswith(ACC_PREFIX):
        raise InvalidInput(
            f"{url!r} is not a project storage URL; write acc://<path>, e.g. acc://{project.slug}/data/."
        )
    rest = url[len(ACC_PREFIX) :]
    folder = rest.endswith("/")
    first, _, remainder = rest.partition("/")
    if first == project.slug:
        rest = remainder
    elif first and Project.objects.filter(slug=first).exclude(pk=project.pk).exists():
        raise InvalidInput(
            f"{url} is outside project {project.slug}; jobs read and write only their own project's files. "
            f"Use acc://{project.slug}/<path>."
        )
    relpath = clean_relpath(rest)
    return relpath + "/" if folder and relpath else relpath


def _name(project: Project, relpath: str) -> str:
    return storage.join(storage.project_root(project), relpath)


def _shown(project: Project, relpath: str) -> str:
    return f"'{relpath or '/'}' in project '{project.slug}'"


def path_kind(*, project: Project, relpath: str) -> str | None:
    """ "file", "folder" or None. The root always exists."""
    relpath = clean_relpath(relpath)
    return "folder" if not relpath else storage.kind(_name(project, relpath))


def is_folder(*, project: Project, relpath: str) -> bool:
    return path_kind(project=project, relpath=relpath) == "folder"


def list_folder(*, project: Project, relpath: str) -> dict:
    """{"path", "entries": [{"name", "path", "type", "size", "modified"}]}, folders first."""
    relpath = clean_relpath(relpath)
    found = path_kind(project=project, relpath=relpath)
    if found is None:
        raise NotFound(f"{_shown(project, relpath)} does not exist.")
    if found == "file":
        raise InvalidInput(f"{_shown(project, relpath)} is a file, not a folder.")
    base = _name(project, relpath)
    dirs, files = storage.listdir(base)
    entries = [_entry(relpath, d, "folder", None) for d in dirs]
    entries += [_entry(relpath, f, "file", posixpath.join(base, f)) for f in files]
    return {"path": relpath, "entries": entries}


def _entry(parent: str, name: str, type_: str, stored: str | None) -> dict:
    entry = {"name": name, "path": posixpath.join(parent, name), "type": type_, "size": None, "modified": None}
    if stored is not None:
        backend = storage.backend()
        entry["size"] = backend.size(stored)
        try:
            entry["modified"] = backend.get_modified_time(stored).isoformat()
        except NotImplementedError:
            pass
    return entry


def open_file(*, project: Project, relpath: str) -> File:
    """An open binary File for reading; the caller closes it."""
    relpath = clean_relpath(relpath)
    found = path_kind(project=project, relpath=relpath)
    if found is None:
        raise NotFound(f"{_shown(project, relpath)} does not exist.")
    if found == "folder":
        raise InvalidInput(f"{_shown(project, relpath)} is a folder; list it instead of downloading it.")
    return storage.backend().open(_name(project, relpath), "rb")


def write_file(*, project: Project, relpath: str, stream: BinaryIO | None, max_bytes: int | None = None) -> dict:
    """Store `stream` at `relpath`, replacing a file there. Streamed in chunks; returns {"path","size","sha256"}."""
    relpath = clean_relpath(relpath)
    if not relpath:
        raise InvalidInput("Give a file path below the project root, e.g. 'data/x.csv'.")
    check_writable(project, relpath)
    limit = settings.ACC_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    with storage.spool(stream, max_bytes=limit) as spooled:
        storage.replace(_name(project, relpath), spooled.file)
    return {"path": relpath, "size": spooled.size, "sha256": spooled.digests["sha256"]}


def check_writable(project: Project, relpath: str) -> None:
    """A file may be written at `relpath` only if it is not a folder and no parent is a file."""
    if storage.kind(_name(project, relpath)) == "folder":
        raise Conflict(f"{_shown(project, relpath)} is a folder; choose a file name inside it.")
    parts = relpath.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if storage.kind(_name(project, parent)) == "file":
            raise Conflict(f"{_shown(project, parent)} is a file, so {relpath!r} cannot be created below it.")


def delete_path(*, project: Project, relpath: str) -> int:
    """Delete a file, or a folder with everything below it; returns how many files were removed."""
    relpath = clean_relpath(relpath)
    if not relpath:
        raise InvalidInput("Refusing to delete the project root; delete the files or folders inside it.")
    found = path_kind(project=project, relpath=relpath)
    if found is None:
        raise NotFound(f"{_shown(project, relpath)} does not exist.")
    if found == "file":
        storage.backend().delete(_name(project, relpath))
        return 1
    return storage.delete_tree(_name(project, relpath))


def copy_to_local(*, project: Project, relpath: str, dest: Path, name: str | None = None) -> list[Path]:
    """Materialise project files under local folder `dest` (an input mapping); returns the files written.

    A folder's contents land inside `dest`. A file lands in `dest` as `name`
    (default: its own name). Files are never written through symlinks.
    """
    relpath = clean_relpath(relpath)
    found = path_kind(project=project, relpath=relpath)
    if found is None:
        raise NotFound(f"{_shown(project, relpath)} does not exist.")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = _name(project, relpath)
    if found == "file":
        target_name = name or posixpath.basename(relpath)
        return [_copy_one(base, dest, target_name)]
    return [_copy_one(posixpath.join(base, rel), dest, rel) for rel in storage.walk_files(base)]


def _copy_one(stored: str, dest: Path, rel: str) -> Path:
    target = dest / rel
    if ".." in Path(rel).parts or not target.parent.resolve().is_relative_to(dest.resolve()):
        raise InvalidInput(f"Refusing to write {rel!r} outside the destination folder.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        storage.copy_out(stored, out)
    return target


def store_from_local(*, project: Project, src: Path, relpath: str) -> list[dict]:
    """Store a local file or folder (an output mapping) at `relpath`; returns [{"path","size","sha256"}].

    A folder's contents land inside `relpath`. A file lands at `relpath`, or
    inside it when `relpath` ends with '/' or is an existing folder.
    Symlinks and special files are skipped: they could point outside the job.
    """
    src = Path(src)
    into_folder = relpath.endswith("/")
    relpath = clean_relpath(relpath)
    if src.is_symlink() or not src.exists():
        raise NotFound(f"{src.name} was not found among the job's outputs.")
    if src.is_file():
        if into_folder or not relpath or path_kind(project=project, relpath=relpath) == "folder":
            relpath = posixpath.join(relpath, src.name) if relpath else src.name
        check_writable(project, relpath)
        return [_store_one(project, src, relpath)]
    if relpath and path_kind(project=project, relpath=relpath) == "file":
        raise Conflict(f"{_shown(project, relpath)} is a file; a folder cannot be stored there.")
    return [_store_one(project, path, posixpath.join(relpath, rel) if relpath else rel) for rel, path in _walk(src)]


def _walk(src: Path):
    for root, dirs, files in os.walk(src, followlinks=False):
        dirs.sort()
        for file in sorted(files):
            path = Path(root) / file
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(src).as_posix(), path


def _store_one(project: Project, path: Path, relpath: str) -> dict:
    size, sha256 = _digest(path)
    with open(path, "rb") as fh:
        storage.replace(_name(project, relpath), fh)
    return {"path": relpath, "size": size, "sha256": sha256}


def sha256_of(path: Path) -> str:
    return _digest(path)[1]


def _digest(path: Path) -> tuple[int, str]:
    hasher, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(storage.CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()


# --- the file explorer: new folders, rename, move ------------------------------
KEEP_MARKER = ".keep"


def make_folder(*, project: Project, relpath: str) -> str:
    """Create an empty folder (and its parents). On S3, where folders are only prefixes, a `.keep` marker."""
    relpath = clean_relpath(relpath)
    if not relpath:
        raise InvalidInput("Give the new folder a name.")
    found = path_kind(project=project, relpath=relpath)
    if found is not None:
        raise Conflict(f"{_shown(project, relpath)} already exists.")
    check_writable(project, relpath)
    name = _name(project, relpath)
    local = _local_path(name)
    if local is not None:
        os.makedirs(local, exist_ok=True)
    else:
        storage.replace(storage.join(name, KEEP_MARKER), io.BytesIO(b""))
    return relpath


def rename_path(*, project: Project, relpath: str, new_name: str) -> str:
    """Give a file or folder a new name in the same folder; returns its new path."""
    relpath = clean_relpath(relpath)
    if not isinstance(new_name, str) or not new_name.strip() or "/" in new_name or new_name.strip() in (".", ".."):
        raise InvalidInput("A new name is one file or folder name, without '/'.")
    target = clean_relpath(posixpath.join(posixpath.dirname(relpath), new_name.strip()))
    return _move(project, relpath, target)


def move_paths(*, project: Project, relpaths: list[str], folder: str) -> list[str]:
    """Move files and folders into `folder` (an existing folder; "" is the root); returns the new paths."""
    folder = clean_relpath(folder)
    if path_kind(project=project, relpath=folder) != "folder":
        raise NotFound(f"{_shown(project, folder)} is not an existing folder.")
    moved = []
    for relpath in relpaths:
        relpath = clean_relpath(relpath)
        moved.append(_move(project, relpath, posixpath.join(folder, posixpath.basename(relpath)) if folder else ""))
    return moved


def _move(project: Project, source: str, target: str) -> str:
    if not source:
        raise InvalidInput("The project root cannot be moved or renamed.")
    target = target or posixpath.basename(source)
    found = path_kind(project=project, relpath=source)
    if found is None:
        raise NotFound(f"{_shown(project, source)} does not exist.")
    if target == source:
        return target
    if target.startswith(source + "/"):
        raise InvalidInput(f"'{source}' cannot be moved into itself.")
    if path_kind(project=project, relpath=target) is not None:
        raise Conflict(f"{_shown(project, target)} already exists; choose another name or remove it first.")
    check_writable(project, target)
    src, dst = _name(project, source), _name(project, target)
    local_src, local_dst = _local_path(src), _local_path(dst)
    if local_src is not None and local_dst is not None:
        os.makedirs(os.path.dirname(local_dst), exist_ok=True)
        os.rename(local_src, local_dst)
    else:  # object storage has no rename: copy every file, then remove the originals
        names = [""] if found == "file" else list(storage.walk_files(src))
        for rel in names:
            with storage.backend().open(storage.join(src, rel), "rb") as fh:
                storage.replace(storage.join(dst, rel), fh)
        if found == "file":
            storage.backend().delete(src)
        else:
            storage.delete_tree(src)
    _forget_digests(src, dst)
    return target


def _forget_digests(*names: str) -> None:
    """Cached hashes are keyed by name, size and mtime, which a rename keeps: drop them for both sides."""
    from django.db.models import Q

    from files.models import FileDigest

    query = Q()
    for name in names:
        query |= Q(name=name) | Q(name__startswith=name + "/")
    FileDigest.objects.filter(query).delete()


def _local_path(name: str) -> str | None:
    try:
        return storage.backend().path(name)
    except NotImplementedError:  # object storage (S3)
        return None
