"""The Xet content-addressed store (CAS) behind `accli copy`: xorbs, shards, global dedupe, reconstructions.

A xorb is verified (every chunk decompressed and hashed, the merkle root
compared with its name) before it is stored, and stored once for all
projects at `xet/xorbs/<hash>`. Which project may use it is `XorbAccess`: a
project gains it by sending the xorb's bytes (it had the data) or when the
platform makes the xorb from the project's own files. Every answer is given
from that project's view: the dedupe query finds only its xorbs, a shard may
reference only its xorbs, a reconstruction lists only its files, and an upload
says "inserted" when the xorb is new *to that project*, so nobody learns
what another project stores.

The wire formats are in `files/xet/` (pure functions); this module is the
glue between them, the tables and storage.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.db import IntegrityError, transaction

from accelerator.errors import InvalidInput, NotFound, RangeNotSatisfiable, TooLarge
from files import storage
from files.models import XetChunk, XetFile, Xorb, XorbAccess
from files.xet import hashes, shard, xorb
from routines.models import Project

XORB_ROOT = "xet/xorbs"
MAX_XORB_BYTES = 65 * 1024 * 1024  # 64 MiB of chunks, and the footer hf_xet appends
MAX_XORB_CHUNKS = 8192
MAX_SHARD_BYTES = 64 * 1024 * 1024
DEDUPE_XORBS = 8  # xorbs described in one dedupe answer
DEDUPE_KEY_LIFETIME = 7 * 24 * 3600
_CHUNK_REC = struct.Struct("<32sII")  # chunk hash, offset of its header in the stored xorb, unpacked length
_TERM_REC = struct.Struct("<32sIIII")  # xorb hash, unpacked length, first chunk, end chunk, spare


def xorb_name(hex_hash: str) -> str:
    return f"{XORB_ROOT}/{hex_hash}"


def parse_hash(text: str, what: str) -> bytes:
    try:
        return hashes.from_hex(text)
    except ValueError:
        raise InvalidInput(f"{what} {text[:80]!r} is not a hash: expected 64 lower-case hex characters.") from None


# --- xorb indexes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XorbIndex:
    """The chunks of a stored xorb: hashes, header offsets (plus the end) and unpacked lengths."""

    hashes: list[bytes]
    offsets: list[int]  # len(hashes) + 1 entries; the last is the stored length
    lengths: list[int]

    @classmethod
    def of(cls, row: Xorb) -> XorbIndex:
        data = bytes(row.index)
        recs = [_CHUNK_REC.unpack_from(data, i * _CHUNK_REC.size) for i in range(row.num_chunks)]
        return cls([r[0] for r in recs], [r[1] for r in recs] + [row.stored_bytes], [r[2] for r in recs])


def _pack_index(chunks) -> bytes:
    return b"".join(_CHUNK_REC.pack(c.hash, c.offset, c.length) for c in chunks)


class _Tee:
    """Reads `src` in large pieces, writes each to `sink` and hands out small reads from memory.

    The xorb is checked and spooled in one pass; the parser's two small reads
    per chunk never reach the request stream (each of its reads can cost a
    hand-over between the server's event loop and this thread).
    """

    PIECE = 4 * 1024 * 1024

    def __init__(self, src: BinaryIO, sink: BinaryIO):
        self.src, self.sink = src, sink
        self.buffer, self.pos = b"", 0

    def read(self, size: int = -1) -> bytes:
        if self.pos >= len(self.buffer):
            self.buffer, self.pos = self.src.read(self.PIECE if size < 0 else max(size, self.PIECE)), 0
            if self.buffer:
                self.sink.write(self.buffer)
        data = self.buffer[self.pos : self.pos + size] if size >= 0 else self.buffer[self.pos :]
        self.pos += len(data)
        return data


# --- uploads -----------------------------------------------------------------------------------------------


def put_xorb(*, project: Project, hex_hash: str, stream: BinaryIO, length: int | None) -> bool:
    """Verify a serialized xorb against its name and store it; True when it is new to this project.

    The bytes are always read and checked, also when the xorb is stored
    already: only a project that sent the whole xorb gains access to it.
    """
    expected = parse_hash(hex_hash, "The xorb hash")
    if length is not None and length > MAX_XORB_BYTES:
        raise TooLarge(f"A xorb may have at most {MAX_XORB_BYTES} bytes; this one has {length}.")
    with storage.spool(None, max_bytes=0) as spooled:
        sink = spooled.file.file
        try:
            chunks = list(
                _records(xorb.read_xorb(_Tee(stream, sink), max_bytes=MAX_XORB_BYTES, max_chunks=MAX_XORB_CHUNKS))
            )
        except xorb.FormatError as exc:
            raise InvalidInput(f"The xorb is not valid: {exc}; nothing was stored.") from None
        actual = hashes.xorb_hash([(c.hash, c.length) for c in chunks])
        if actual != expected:
            raise InvalidInput(
                f"The xorb's chunks hash to {hashes.to_hex(actual)}, not to {hex_hash} as its URL says; "
                "nothing was stored."
            )
        stored_bytes = chunks[-1].offset + chunks[-1].stored_len if chunks else 0
        sink.flush()
        sink.truncate(stored_bytes)  # the footer is not kept: the index below holds what it says
        sink.seek(0)
        return store_xorb(
            project=project, hex_hash=hex_hash, recs=chunks, stored_bytes=stored_bytes, fileobj=spooled.file
        )


def store_xorb(*, project: Project, hex_hash: str, recs: list[ChunkRecord], stored_bytes: int, fileobj) -> bool:
    """Store a checked xorb unless it is stored already, and let `project` use it; True when new to the project."""
    row = Xorb.objects.filter(hash=hex_hash).first()
    if row is None:
        row = _store_new_xorb(hex_hash, recs, stored_bytes, fileobj)
    return _grant(row, project)


@dataclass(frozen=True)
class ChunkRecord:
    """What is kept of a checked chunk: not its data, so a 64 MiB xorb is never held whole."""

    index: int
    offset: int
    stored_len: int
    length: int
    hash: bytes


def _records(chunks: Iterator[xorb.XorbChunk]) -> Iterator[ChunkRecord]:
    for c in chunks:
        yield ChunkRecord(index=c.index, offset=c.offset, stored_len=c.stored_len, length=len(c.data), hash=c.hash)


def _store_new_xorb(hex_hash: str, chunks: list[ChunkRecord], stored_bytes: int, fileobj) -> Xorb:
    storage.save_new(xorb_name(hex_hash), fileobj)  # False when a concurrent upload stored the same bytes
    try:
        with transaction.atomic():
            row = Xorb.objects.create(
                hash=hex_hash,
                num_chunks=len(chunks),
                stored_bytes=stored_bytes,
                unpacked_bytes=sum(c.length for c in chunks),
                index=_pack_index(chunks),
            )
            XetChunk.objects.bulk_create(
                [
                    XetChunk(hash=hashes.to_hex(c.hash), xorb=row, chunk_index=c.index)
                    for c in chunks
                    if hashes.dedupe_eligible(c.hash)
                ],
                ignore_conflicts=True,
            )
    except IntegrityError:  # the same xorb, recorded meanwhile by a concurrent upload
        row = Xorb.objects.get(hash=hex_hash)
    return row


def _grant(row: Xorb, project: Project) -> bool:
    _, created = XorbAccess.objects.get_or_create(xorb=row, project=project)
    return created


def put_shard(*, project: Project, stream: BinaryIO, length: int | None) -> int:
    """Check a shard (its files and xorbs) and record its files' reconstructions for this project.

    Every xorb it names must be one this project may use, every term must
    lie inside its xorb with the right length and verification hash, and every
    file's hash must be the hash of its chunks. Nothing is recorded unless all
    of it holds. Returns 1 (the protocol's "registered").
    """
    if length is not None and length > MAX_SHARD_BYTES:
        raise TooLarge(f"A shard may have at most {MAX_SHARD_BYTES} bytes; this one has {length}.")
    with storage.spool(stream, max_bytes=MAX_SHARD_BYTES, algorithms=()) as spooled:
        try:
            files, cas = shard.parse_shard(spooled.file.file, size=spooled.size)
        except shard.FormatError as exc:
            raise InvalidInput(f"The shard is not valid: {exc}; nothing was recorded.") from None
    named = {info.xorb_hash for info in cas} | {t.xorb_hash for f in files for t in f.terms}
    indexes = _usable_xorbs(project, named)
    for info in cas:
        _check_cas_info(info, indexes[info.xorb_hash])
    records = [_checked_file(info, indexes) for info in files]
    for info, size in records:
        record_file(
            project=project,
            hex_hash=hashes.to_hex(info.file_hash),
            size=size,
            sha256=info.sha256.hex(),
            terms=_pack_terms(info),
        )
    _index_first_chunks(files, indexes)
    return 1


def record_file(*, project: Project, hex_hash: str, size: int, sha256: str, terms: bytes) -> None:
    """Remember how to rebuild a file of `project` (the one writer of XetFile); concurrent writers agree."""
    fields = {"size": size, "sha256": sha256, "terms": terms}
    try:
        with transaction.atomic():
            XetFile.objects.update_or_create(project=project, hash=hex_hash, defaults=fields)
    except IntegrityError:  # created meanwhile by a concurrent upload or preparation of the same bytes
        XetFile.objects.filter(project=project, hash=hex_hash).update(**fields)


def _usable_xorbs(project: Project, raw_hashes: set[bytes]) -> dict[bytes, tuple[Xorb, XorbIndex]]:
    by_hex = {hashes.to_hex(h): h for h in raw_hashes}
    rows = Xorb.objects.filter(hash__in=by_hex, access__project=project)
    found = {by_hex[row.hash]: (row, XorbIndex.of(row)) for row in rows}
    missing = sorted(hex_ for hex_, raw in by_hex.items() if raw not in found)
    if missing:
        raise InvalidInput(
            f"The shard names {len(missing)} xorb(s) this project has not uploaded, e.g. {missing[0]}; "
            "upload every xorb before the shard that uses it. Nothing was recorded."
        )
    return found


def _check_cas_info(info: shard.CasInfo, found: tuple[Xorb, XorbIndex]) -> None:
    row, index = found
    listed = [(c.hash, c.unpacked_bytes) for c in info.chunks]
    if listed != list(zip(index.hashes, index.lengths, strict=True)):
        raise InvalidInput(
            f"The shard's listing of xorb {row.hash} does not match the xorb that was uploaded; nothing was recorded."
        )


def _checked_file(info: shard.FileInfo, indexes) -> tuple[shard.FileInfo, int]:
    shown = hashes.to_hex(info.file_hash)
    if info.terms and (info.verification is None or len(info.verification) != len(info.terms)):
        raise InvalidInput(f"File {shown} in the shard has no verification entries; nothing was recorded.")
    if info.sha256 is None:
        raise InvalidInput(f"File {shown} in the shard has no SHA-256 (metadata extension); nothing was recorded.")
    chunks: list[tuple[bytes, int]] = []
    for n, term in enumerate(info.terms):
        row, index = indexes[term.xorb_hash]
        if not 0 <= term.start < term.end <= row.num_chunks:
            raise InvalidInput(
                f"File {shown}: term {n} asks for chunks [{term.start}, {term.end}) of xorb {row.hash}, "
                f"which has {row.num_chunks}; nothing was recorded."
            )
        lengths = index.lengths[term.start : term.end]
        if sum(lengths) != term.unpacked_bytes:
            raise InvalidInput(f"File {shown}: term {n} has the wrong unpacked length; nothing was recorded.")
        if hashes.verification_hash(index.hashes[term.start : term.end]) != info.verification[n]:
            raise InvalidInput(f"File {shown}: term {n} fails its verification hash; nothing was recorded.")
        chunks.extend(zip(index.hashes[term.start : term.end], lengths, strict=True))
    if hashes.file_hash(chunks) != info.file_hash:
        raise InvalidInput(f"File {shown}: its chunks hash to another file hash; nothing was recorded.")
    return info, sum(length for _, length in chunks)


def _pack_terms(info: shard.FileInfo) -> bytes:
    return b"".join(pack_term(t.xorb_hash, t.unpacked_bytes, t.start, t.end) for t in info.terms)


def pack_term(xorb_hash: bytes, unpacked_bytes: int, start: int, end: int) -> bytes:
    return _TERM_REC.pack(xorb_hash, unpacked_bytes, start, end, 0)


def unpack_terms(data: bytes) -> list[shard.Term]:
    data = bytes(data)
    out = []
    for i in range(len(data) // _TERM_REC.size):
        xorb_hash, unpacked, start, end, _ = _TERM_REC.unpack_from(data, i * _TERM_REC.size)
        out.append(shard.Term(xorb_hash=xorb_hash, unpacked_bytes=unpacked, start=start, end=end))
    return out


def _index_first_chunks(files: list[shard.FileInfo], indexes) -> None:
    """A file's first chunk is always eligible for global dedupe (the protocol's rule)."""
    rows = []
    for info in files:
        if info.terms:
            term = info.terms[0]
            row, index = indexes[term.xorb_hash]
            rows.append(XetChunk(hash=hashes.to_hex(index.hashes[term.start]), xorb=row, chunk_index=term.start))
    XetChunk.objects.bulk_create(rows, ignore_conflicts=True)


# --- global dedupe -----------------------------------------------------------------------------------------


def dedupe_answer(*, project: Project, chunk_hex: str) -> bytes:
    """A shard describing this project's xorbs that hold the chunk; NotFound when it has none.

    Chunk hashes in the answer are keyed with a fresh HMAC key, as the protocol
    asks, so the answer reveals only chunks the client already holds.
    """
    parse_hash(chunk_hex, "The chunk hash")
    rows = list(
        Xorb.objects.filter(
            pk__in=XetChunk.objects.filter(hash=chunk_hex).values("xorb"), access__project=project
        ).order_by("-created_at")[:DEDUPE_XORBS]
    )
    if not rows:
        raise NotFound("No xorb of this project holds that chunk.")
    cas = []
    for row in rows:
        index = XorbIndex.of(row)
        chunks = [
            shard.CasChunk(hash=h, byte_start=sum(index.lengths[:i]), unpacked_bytes=n)
            for i, (h, n) in enumerate(zip(index.hashes, index.lengths, strict=True))
        ]
        cas.append(
            shard.CasInfo(
                xorb_hash=hashes.from_hex(row.hash),
                chunks=chunks,
                bytes_in_cas=row.unpacked_bytes,
                bytes_on_disk=row.stored_bytes,
            )
        )
    return shard.serialize_shard(
        [], cas, hmac_key=os.urandom(32), expiry=int(time.time()) + DEDUPE_KEY_LIFETIME, with_footer=True
    )


# --- reconstructions ---------------------------------------------------------------------------------------


def parse_range(header: str | None) -> tuple[int, int] | None:
    """`bytes=a-b` (b inclusive) -> (a, b + 1); None without a header."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip() != "bytes" or not dash or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise InvalidInput(f"Range {header[:80]!r} is not valid: send bytes=<first>-<last>, last inclusive.")
    return int(first), int(last) + 1


def reconstruction(
    *, project: Project, file_hex: str, byte_range: tuple[int, int] | None, url_for: Callable[[str, int, int], str]
) -> dict:
    """The protocol's QueryReconstructionResponse (v1) for one of this project's files.

    `url_for(xorb_hash, first_byte, last_byte)` makes the URL the client
    fetches that byte range (inclusive) of a stored xorb from.
    """
    if parse_hash(file_hex, "The file hash") == hashes.ZERO:  # the empty file: nothing to fetch
        if byte_range is not None:
            raise RangeNotSatisfiable("The file is empty: no byte range of it exists.")
        return {"offset_into_first_range": 0, "terms": [], "fetch_info": {}}
    row = XetFile.objects.filter(project=project, hash=file_hex).first()
    if row is None:
        raise NotFound(f"File {file_hex} is not among this project's files.")
    start, end = byte_range or (0, row.size)
    if byte_range is not None and start >= row.size:
        raise RangeNotSatisfiable(f"The range starts at byte {start}; the file has {row.size} bytes.")
    end = min(end, row.size)
    terms = unpack_terms(row.terms)
    indexes = {
        hashes.from_hex(x.hash): XorbIndex.of(x)
        for x in Xorb.objects.filter(hash__in={hashes.to_hex(t.xorb_hash) for t in terms})
    }
    out_terms, offset_into_first = _select(terms, indexes, start, end)
    return {
        "offset_into_first_range": offset_into_first,
        "terms": [
            {
                "hash": hashes.to_hex(t.xorb_hash),
                "unpacked_length": t.unpacked_bytes,
                "range": {"start": t.start, "end": t.end},
            }
            for t in out_terms
        ],
        "fetch_info": _fetch_info(out_terms, indexes, url_for),
    }


def _select(terms, indexes, start: int, end: int) -> tuple[list[shard.Term], int]:
    """The parts of `terms` (whole chunks) that cover file bytes [start, end), and the skip into the first."""
    out: list[shard.Term] = []
    offset_into_first = 0
    pos = 0
    for term in terms:
        if pos >= end:
            break
        if pos + term.unpacked_bytes <= start:
            pos += term.unpacked_bytes
            continue
        lengths = indexes[term.xorb_hash].lengths
        first, last, unpacked = None, term.start, 0
        for i in range(term.start, term.end):
            chunk_end = pos + lengths[i]
            if chunk_end > start and pos < end:
                if first is None:
                    first = i
                    if not out:
                        offset_into_first = max(0, start - pos)
                last = i + 1
                unpacked += lengths[i]
            pos = chunk_end
        if first is not None:
            out.append(shard.Term(xorb_hash=term.xorb_hash, unpacked_bytes=unpacked, start=first, end=last))
    return out, offset_into_first


def _fetch_info(terms, indexes, url_for) -> dict:
    """Per xorb, the chunk ranges the terms need, overlapping or touching ones merged, each with its URL."""
    ranges: dict[bytes, list[list[int]]] = {}
    for term in terms:
        ranges.setdefault(term.xorb_hash, []).append([term.start, term.end])
    out = {}
    for raw, spans in ranges.items():
        spans.sort()
        merged = [spans[0]]
        for first, last in spans[1:]:
            if first <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        offsets = indexes[raw].offsets
        hex_ = hashes.to_hex(raw)
        out[hex_] = [
            {
                "range": {"start": first, "end": last},
                "url": url_for(hex_, offsets[first], offsets[last] - 1),
                "url_range": {"start": offsets[first], "end": offsets[last] - 1},
            }
            for first, last in merged
        ]
    return out


def xorb_bytes(*, hex_hash: str, first: int, last: int) -> Iterator[bytes]:
    """Bytes [first, last] of a stored xorb (the URL that asked was signed for exactly this range)."""
    return storage.read_range(xorb_name(hex_hash), first, last + 1)


def read_chunks(*, term: shard.Term, index: XorbIndex) -> Iterator[bytes]:
    """The unpacked data of a term's chunks, one chunk at a time, read from storage as they go."""
    hex_ = hashes.to_hex(term.xorb_hash)
    pieces = storage.read_range(xorb_name(hex_), index.offsets[term.start], index.offsets[term.end])
    buffer, pos = bytearray(), 0
    for i in range(term.start, term.end):
        need = index.offsets[i + 1] - index.offsets[i]
        while len(buffer) - pos < need:
            piece = next(pieces, b"")
            if not piece:
                raise NotFound(f"Xorb {hex_} is shorter in storage than its index says; it cannot be read.")
            del buffer[:pos]
            pos = 0
            buffer += piece
        stored = bytes(buffer[pos : pos + need])
        pos += need
        data = xorb.decode_range(stored, 1)[0]
        if len(data) != index.lengths[i]:
            raise InvalidInput(f"Chunk {i} of xorb {hex_} has the wrong length in storage.")
        yield data
