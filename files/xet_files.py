"""Project files over Xet: what `accli copy` names, stats and registers, and the Xet form of any stored file.

After an upload (xorbs and shard, files/xet_cas.py) the client registers
each file by its Xet hash and SHA-256. Registering rebuilds the file from its
xorbs into a staging file, checks both hashes while writing, and only when
every file of the batch is right stores them all as ordinary project files,
seen by the file API, the explorer and job mappings.

For a download, every project file needs a Xet hash and a reconstruction,
including files that came another way (the web, job outputs). `stat` makes
them the first time a file is asked for: the file is chunked by the
protocol's rules, its chunks packed into xorbs that only this project may use,
and its hashes remembered against its size and modification time, so a
changed file is prepared again.
"""

from __future__ import annotations

import hashlib
import posixpath
from contextlib import ExitStack

from django.db import transaction

from accelerator.errors import Conflict, InvalidInput, NotFound
from files import digests, services, storage, xet_cas
from files.models import XetChunk, XetFile, Xorb
from files.xet import hashes, xorb
from routines.models import Project

MAX_ITEMS = 1000
XORB_TARGET = 64 * 1024 * 1024  # unpacked bytes per xorb made from a stored file
EMPTY = hashes.to_hex(hashes.ZERO)


def _relpath_of(project: Project, filename: str) -> str:
    """accli names files `<slug>/<path>`; the slug must be the project's own."""
    if not isinstance(filename, str) or not filename.startswith(f"{project.slug}/"):
        raise InvalidInput(
            f"File name {str(filename)[:120]!r} does not start with '{project.slug}/'; "
            f"a copy to acc://{project.slug}/... registers files of that project only."
        )
    relpath = services.clean_relpath(filename[len(project.slug) + 1 :])
    if not relpath:
        raise InvalidInput(f"File name {filename!r} names the project root, not a file.")
    return relpath


def _name(project: Project, relpath: str) -> str:
    return storage.join(storage.project_root(project), relpath)


# --- register (after an upload) ----------------------------------------------------------------------------


def register(*, project: Project, items: list) -> list[dict]:
    """Store each uploaded file at its path, rebuilt from the project's xorbs; all or nothing.

    Each item is {"filename": "<slug>/<path>", "merkle_hash", "sha256", "file_size"}.
    """
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        raise InvalidInput(f'Send {{"items": [...]}} with 1 to {MAX_ITEMS} files to register.')
    planned = [_plan(project, n, item) for n, item in enumerate(items)]
    paths = [relpath for relpath, *_ in planned]
    if len(set(paths)) != len(paths):
        raise InvalidInput("The same path is registered twice in one batch; name each file once.")
    with ExitStack() as stack:
        staged = [_rebuild(stack, project, *plan) for plan in planned]
        for relpath, *_ in planned:
            services.check_writable(project, relpath)
        stored = []
        for (relpath, xet_hash, size, sha256, _), fileobj in zip(planned, staged, strict=True):
            storage.replace(_name(project, relpath), fileobj)
            digests.remember(project=project, relpath=relpath, sha256=sha256, xet_hash=xet_hash)
            stored.append({"path": relpath, "size": size, "sha256": sha256, "merkle_hash": xet_hash})
    return stored


def _plan(project: Project, n: int, item) -> tuple[str, str, int, str, XetFile | None]:
    if not isinstance(item, dict):
        raise InvalidInput(f"Item {n} is not an object with filename, merkle_hash, sha256 and file_size.")
    relpath = _relpath_of(project, item.get("filename"))
    xet_hash, sha256, size = item.get("merkle_hash"), item.get("sha256"), item.get("file_size")
    xet_cas.parse_hash(str(xet_hash), f"Item {n}: merkle_hash")
    if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput(f"Item {n} ({relpath}): sha256 must be 64 lower-case hex characters.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"Item {n} ({relpath}): file_size must be a whole number of bytes.")
    if xet_hash == EMPTY and size == 0:
        return relpath, xet_hash, size, sha256, None
    row = XetFile.objects.filter(project=project, hash=xet_hash).first()
    if row is None:
        raise InvalidInput(
            f"{relpath}: no uploaded file has Xet hash {xet_hash} in project '{project.slug}'; "
            "upload it (its xorbs and shard) before registering it."
        )
    if row.size != size:
        raise InvalidInput(f"{relpath}: the upload has {row.size} bytes, not the {size} registered.")
    return relpath, xet_hash, size, sha256, row


def _rebuild(stack: ExitStack, project: Project, relpath: str, xet_hash, size, sha256, row):
    """The file rebuilt into a staging file, its SHA-256 checked; nothing is stored yet."""
    spooled = stack.enter_context(storage.spool(None, max_bytes=0))
    out, digest = spooled.file.file, hashlib.sha256()
    if row is not None:
        for data in _file_bytes(row):
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != sha256:
        raise InvalidInput(
            f"{relpath}: the uploaded data has SHA-256 {digest.hexdigest()}, not {sha256}; nothing was stored."
        )
    out.flush()
    out.seek(0)
    return spooled.file


def _file_bytes(row: XetFile):
    terms = xet_cas.unpack_terms(row.terms)
    indexes = {
        hashes.from_hex(x.hash): xet_cas.XorbIndex.of(x)
        for x in Xorb.objects.filter(hash__in={hashes.to_hex(t.xorb_hash) for t in terms})
    }
    for term in terms:
        yield from xet_cas.read_chunks(term=term, index=indexes[term.xorb_hash])


# --- what the downloading client asks ----------------------------------------------------------------------


def enumerate_files(*, project: Project, prefix: str) -> list[str]:
    """`<slug>/<path>` of the file `prefix` names, or of every file below the folder it names."""
    if prefix != project.slug and not prefix.startswith(f"{project.slug}/"):
        raise InvalidInput(f"The prefix {prefix[:120]!r} does not start with '{project.slug}/'.")
    relpath = services.clean_relpath(prefix[len(project.slug) + 1 :])
    found = services.path_kind(project=project, relpath=relpath)
    if found is None:
        return []
    if found == "file":
        return [f"{project.slug}/{relpath}"]
    base = _name(project, relpath)
    return [
        f"{project.slug}/{posixpath.join(relpath, rel) if relpath else rel}"
        for rel in sorted(storage.walk_files(base))
        if posixpath.basename(rel) != services.KEEP_MARKER
    ]


def stat(*, project: Project, filename: str) -> dict:
    """Size and hashes of one project file, preparing its Xet form if it has none for its current bytes."""
    relpath = services.clean_relpath(str(filename).lstrip("/"))
    if services.path_kind(project=project, relpath=relpath) != "file":
        raise NotFound(f"'{relpath}' is not a file in project '{project.slug}'.")
    name = _name(project, relpath)
    known = digests.known_xet_hash(name)
    if known is None or not XetFile.objects.filter(project=project, hash=known[1]).exists() and known[1] != EMPTY:
        known = prepare(project=project, name=name)
    size, xet_hash = known
    sha256 = digests.file_digest(name)
    return {"filename": f"{project.slug}/{relpath}", "size": size, "merkle_hash": xet_hash, "sha256": sha256}


def prepare(*, project: Project, name: str) -> tuple[int, str]:
    """Chunk a stored file into xorbs this project may use and record its reconstruction; (size, Xet hash)."""
    from files.xet import chunking  # numpy: loaded by the processes that prepare files, not by every start

    size, modified = digests.stat_of(name)
    sha, chunks, terms = hashlib.sha256(), [], []
    with _XorbBuilder(project) as builder:
        for data in chunking.iter_chunks(_Reader(storage.read_range(name, 0, size), sha)):
            h = hashes.chunk_hash(data)
            chunks.append((h, len(data)))
            builder.add(h, data)
            if builder.full():
                terms.append(builder.flush())
        if builder.recs:
            terms.append(builder.flush())
    xet_hash = hashes.to_hex(hashes.file_hash(chunks))
    total = sum(n for _, n in chunks)
    if total != size:
        raise Conflict(f"'{name.split('/', 2)[-1]}' changed while it was being read; ask again.")
    with transaction.atomic():
        if chunks:
            xet_cas.record_file(
                project=project, hex_hash=xet_hash, size=total, sha256=sha.hexdigest(), terms=b"".join(terms)
            )
            first_xorb = Xorb.objects.get(hash=builder.first_xorb)
            XetChunk.objects.get_or_create(
                hash=hashes.to_hex(chunks[0][0]), xorb=first_xorb, defaults={"chunk_index": 0}
            )
        digests.remember_xet_hash(name, size=size, modified=modified, sha256=sha.hexdigest(), xet_hash=xet_hash)
    return total, xet_hash


class _Reader:
    """A read-only file over an iterator of byte pieces that feeds everything read through a hash."""

    def __init__(self, pieces, hasher):
        self.pieces, self.hasher, self.rest = pieces, hasher, b""

    def read(self, size: int = -1) -> bytes:
        parts, have = [self.rest], len(self.rest)
        while size < 0 or have < size:
            piece = next(self.pieces, b"")
            if not piece:
                break
            parts.append(piece)
            have += len(piece)
        joined = b"".join(parts)
        data, self.rest = (joined, b"") if size < 0 else (joined[:size], joined[size:])
        self.hasher.update(data)
        return data


class _XorbBuilder:
    """Packs consecutive chunks into xorbs of about XORB_TARGET bytes, each stored once and granted to the project."""

    def __init__(self, project: Project):
        self.project = project
        self.first_xorb: str | None = None
        self.stack = ExitStack()
        self._start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stack.close()

    def _start(self):
        self.spooled = self.stack.enter_context(storage.spool(None, max_bytes=0))
        self.recs: list[xet_cas.ChunkRecord] = []
        self.offset = self.unpacked = 0

    def add(self, h: bytes, data: bytes) -> None:
        stored = xorb.encode_chunk(data)
        self.spooled.file.file.write(stored)
        self.recs.append(
            xet_cas.ChunkRecord(
                index=len(self.recs), offset=self.offset, stored_len=len(stored), length=len(data), hash=h
            )
        )
        self.offset += len(stored)
        self.unpacked += len(data)

    def full(self) -> bool:
        return self.unpacked >= XORB_TARGET or len(self.recs) >= xet_cas.MAX_XORB_CHUNKS

    def flush(self) -> bytes:
        """Store the xorb being built; the term (packed as in XetFile.terms) that covers all its chunks."""
        raw = hashes.xorb_hash([(r.hash, r.length) for r in self.recs])
        hex_ = hashes.to_hex(raw)
        fileobj = self.spooled.file
        fileobj.file.flush()
        fileobj.file.seek(0)
        xet_cas.store_xorb(
            project=self.project, hex_hash=hex_, recs=self.recs, stored_bytes=self.offset, fileobj=fileobj
        )
        self.first_xorb = self.first_xorb or hex_
        term = xet_cas.pack_term(raw, self.unpacked, 0, len(self.recs))
        self.stack.close()
        self.stack = ExitStack()
        self._start()
        return term
