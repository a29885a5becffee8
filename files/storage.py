"""Low-level helpers over django-storages `default_storage`.

The same code runs on the filesystem backend (real folders) and on S3 (a
folder is only a key prefix), so "is this a folder" and "walk this folder"
are answered here once. Uploads are spooled to a staging file while they
are hashed and measured, so nothing is ever held in memory whole and nothing
reaches storage before it has been checked. On the filesystem the staging
file lies in the storage's own `.staging/` folder and is stored by a rename,
so an upload's bytes are written to disk once; on S3 it is a local temporary
file, uploaded in parts.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage

from accelerator.errors import Conflict, TooLarge

CHUNK = 1024 * 1024
SPOOL_READ = 4 * CHUNK  # at most this much per read of an upload: a streamed body hands on its parts whole
STAGING = ".staging"


def backend() -> Storage:
    return default_storage


def project_root(project) -> str:
    return f"projects/{project.pk}"


def jobstore_root(project) -> str:
    return f"jobstore/{project.pk}"


def join(root: str, relpath: str) -> str:
    return posixpath.join(root, relpath) if relpath else root


def _local_path(name: str) -> str | None:
    try:
        return backend().path(name)
    except NotImplementedError:  # remote storage (S3): no local path
        return None


def kind(name: str) -> str | None:
    """ "file", "folder" or None for a storage name."""
    local = _local_path(name)
    if local is not None:
        return "file" if os.path.isfile(local) else "folder" if os.path.isdir(local) else None
    if backend().exists(name):
        return "file"
    dirs, files = backend().listdir(name)
    return "folder" if dirs or files else None


def listdir(name: str) -> tuple[list[str], list[str]]:
    try:
        dirs, files = backend().listdir(name)
    except FileNotFoundError:
        return [], []
    return sorted(dirs), sorted(files)


def walk_files(name: str, prefix: str = "") -> Iterator[str]:
    """Every file below folder `name`, as a path relative to it."""
    dirs, files = listdir(name)
    for file in files:
        yield posixpath.join(prefix, file) if prefix else file
    for sub in dirs:
        yield from walk_files(posixpath.join(name, sub), posixpath.join(prefix, sub) if prefix else sub)


def delete_tree(name: str) -> int:
    """Delete a folder and everything below it; return the number of files removed."""
    dirs, files = listdir(name)
    count = 0
    for file in files:
        backend().delete(posixpath.join(name, file))
        count += 1
    for sub in dirs:
        count += delete_tree(posixpath.join(name, sub))
    local = _local_path(name)
    if local is not None and os.path.isdir(local):
        backend().delete(name)  # FileSystemStorage.delete removes an empty directory
    return count


class StagedFile(File):
    """A spooled upload. Its `temporary_file_path` lets FileSystemStorage store it with a rename."""

    def __init__(self, file, path: str):
        super().__init__(file, name=os.path.basename(path))
        self.path = path

    def temporary_file_path(self) -> str:
        return self.path


@dataclass
class Spooled:
    """An upload spooled to a local staging file, with its size and digests."""

    file: StagedFile
    size: int = 0
    digests: dict[str, str] = field(default_factory=dict)


def _staging_dir() -> str:
    """Where uploads are spooled: inside the storage (same filesystem, so storing is a rename), else tmp."""
    local = _local_path(STAGING)
    folder = local or getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    return folder


@contextmanager
def spool(stream: BinaryIO | None, *, max_bytes: int, algorithms: tuple[str, ...] = ("sha256",)) -> Iterator[Spooled]:
    """Copy `stream` to a staging file in chunks, hashing as it goes; refuse more than `max_bytes`."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    fd, path = tempfile.mkstemp(prefix="upload-", dir=_staging_dir())
    try:
        with os.fdopen(fd, "w+b") as tmp:
            size = 0
            while stream is not None:
                chunk = stream.read(SPOOL_READ)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"The upload is larger than the limit of {max_bytes} bytes; nothing was stored.")
                for hasher in hashers.values():
                    hasher.update(chunk)
                tmp.write(chunk)
            tmp.seek(0)
            yield Spooled(file=StagedFile(tmp, path), size=size, digests={n: h.hexdigest() for n, h in hashers.items()})
    finally:
        with suppress(FileNotFoundError):  # stored by a rename, it is gone already
            os.unlink(path)


def save_new(name: str, fileobj: IO[bytes]) -> bool:
    """Store `fileobj` under `name` unless something is already there; True when this call stored it.

    The filesystem backend never overwrites: when another writer got there
    first it saves under a new name, which is removed again here.
    """
    if backend().exists(name):
        return False
    fileobj.seek(0)
    content = fileobj if isinstance(fileobj, File) else File(fileobj, name=posixpath.basename(name))
    saved = backend().save(name, content)
    if saved != name:
        backend().delete(saved)
        return False
    return True


def replace(name: str, fileobj: IO[bytes]) -> None:
    """Store `fileobj` under `name`, replacing a file that is there."""
    if backend().exists(name):
        backend().delete(name)
    try:
        stored = save_new(name, fileobj)
    except (NotADirectoryError, FileExistsError):
        raise Conflict("Cannot write there: a parent of that path is a file, not a folder.") from None
    if not stored:
        raise Conflict("Another upload wrote the same path at the same time; try again.")


def read_range(name: str, start: int, end: int, *, piece: int = CHUNK) -> Iterator[bytes]:
    """Bytes [start, end) of storage file `name`, in pieces of at most `piece` bytes.

    On the filesystem a seek; on S3 one ranged GET, streamed (django-storages'
    own file object would download the whole object first).
    """
    if end <= start:
        return
    local = _local_path(name)
    if local is not None:
        with open(local, "rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0 and (data := fh.read(min(piece, left))):
                left -= len(data)
                yield data
        return
    store = backend()
    body = store.bucket.Object(store._normalize_name(name)).get(Range=f"bytes={start}-{end - 1}")["Body"]
    try:
        while data := body.read(piece):
            yield data
    finally:
        body.close()


def signed_url(name: str, *, expire: int) -> str | None:
    """A URL that lets anyone holding it GET `name` for `expire` seconds, where the storage can make one (S3)."""
    if _local_path(name) is not None:
        return None
    return backend().url(name, expire=expire)


def copy_out(name: str, target) -> int:
    """Copy storage file `name` to an open local binary file; return the byte count."""
    size = 0
    with backend().open(name, "rb") as src:
        while chunk := src.read(CHUNK):
            target.write(chunk)
            size += len(chunk)
    return size
