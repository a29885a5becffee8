"""Shards: file reconstructions and xorb chunk lists in one binary file (docs: shard.md).

Layout: a 48-byte header, the file info section, the CAS (xorb) info section, then optionally lookup tables and a
200-byte footer. Every record in the two sections is 48 bytes and each section ends with a "bookend" record whose
hash is all 0xFF. Clients upload shards without footer; the global dedupe API answers with one that has it.
"""

import struct
import time
from dataclasses import dataclass
from typing import BinaryIO

from .hashes import hmac as keyed_hash
from .xorb import FormatError

HEADER_TAG = bytes(
    [72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0,  # "HFRepoMetaData\0"
     85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169]
)  # fmt: skip
HEADER_VERSION = 2
FOOTER_VERSION = 1
HEADER_SIZE = 48
FOOTER_SIZE = 200
RECORD = 48  # every entry of the file and CAS info sections

FLAG_VERIFICATION = 1 << 31
FLAG_METADATA_EXT = 1 << 30

BOOKEND_HASH = b"\xff" * 32
_BOOKEND = BOOKEND_HASH + bytes(16)

_HEADER = struct.Struct("<32sQQ")
_FILE_HEADER = struct.Struct("<32sII8x")
_TERM = struct.Struct("<32sIIII")
_HASH_RECORD = struct.Struct("<32s16x")  # verification entry and metadata extension
_CAS_HEADER = struct.Struct("<32sIIII")
_CAS_CHUNK = struct.Struct("<32sIIII")
_FOOTER = struct.Struct("<9Q32sQQ6QQQQQ")
assert _FOOTER.size == FOOTER_SIZE


@dataclass
class Term:
    xorb_hash: bytes
    unpacked_bytes: int
    start: int  # first chunk index in the xorb
    end: int  # chunk index after the last one


@dataclass
class FileInfo:
    file_hash: bytes
    terms: list[Term]
    verification: list[bytes] | None  # one hash per term, when the shard has them
    # The file's SHA-256 digest (hashlib's ``digest()``) from the metadata extension. The shard stores it like a
    # Xet hash, each 8-byte group reversed (so that its string form is the usual hex digest); parse and serialize
    # convert.
    sha256: bytes | None


@dataclass
class CasChunk:
    hash: bytes
    byte_start: int  # where the chunk starts in the xorb's uncompressed content (sum of the sizes before it)
    unpacked_bytes: int


@dataclass
class CasInfo:
    xorb_hash: bytes
    chunks: list[CasChunk]
    bytes_in_cas: int  # sum of the chunks' uncompressed sizes
    bytes_on_disk: int  # size of the serialized xorb


@dataclass
class ShardFooter:
    file_info_offset: int
    cas_info_offset: int
    hmac_key: bytes  # zero: chunk hashes are stored as they are
    created: int
    expiry: int
    footer_offset: int


class _Reader:
    """Reads exactly what a shard of ``size`` bytes can hold; anything short or beyond is a FormatError."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream = stream
        self.size = size
        self.pos = 0

    def room(self) -> int:
        return self.size - self.pos

    def read(self, n: int, what: str) -> bytes:
        if n > self.room():
            raise FormatError(f"shard is truncated: {what} at offset {self.pos} needs {n} bytes, {self.room()} remain")
        parts = []
        left = n
        while left:
            got = self.stream.read(min(left, 1 << 20))
            if not got:
                raise FormatError(f"shard is truncated: {what} at offset {self.pos} is cut short")
            parts.append(got)
            left -= len(got)
        self.pos += n
        return b"".join(parts)


def parse_footer(raw: bytes) -> ShardFooter:
    """The fields of a 200-byte shard footer."""
    if len(raw) != FOOTER_SIZE:
        raise FormatError(f"a shard footer has {FOOTER_SIZE} bytes, got {len(raw)}")
    v = _FOOTER.unpack(raw)
    if v[0] != FOOTER_VERSION:
        raise FormatError(f"unsupported shard footer version {v[0]} (expected {FOOTER_VERSION})")
    return ShardFooter(
        file_info_offset=v[1], cas_info_offset=v[2], hmac_key=v[9], created=v[10], expiry=v[11], footer_offset=v[-1]
    )


def parse_shard(stream: BinaryIO, *, size: int) -> tuple[list[FileInfo], list[CasInfo]]:
    """The file infos and CAS infos of a shard of ``size`` bytes read from ``stream``.

    Counts in the shard are checked against the bytes left before anything is read or allocated for them.
    Raises FormatError when the shard is malformed in any way.
    """
    if size < HEADER_SIZE + 2 * RECORD:
        raise FormatError(f"shard of {size} bytes is too short (a header and two section ends take 144)")
    r = _Reader(stream, size)
    tag, version, footer_size = _HEADER.unpack(r.read(HEADER_SIZE, "header"))
    if tag != HEADER_TAG:
        raise FormatError("not a shard: the header tag is wrong")
    if version != HEADER_VERSION:
        raise FormatError(f"unsupported shard version {version} (expected {HEADER_VERSION})")
    if footer_size not in (0, FOOTER_SIZE):
        raise FormatError(f"shard header declares a footer of {footer_size} bytes (expected 0 or {FOOTER_SIZE})")
    # The info sections must end before the footer.
    r.size = size - footer_size
    if r.size < HEADER_SIZE + 2 * RECORD:
        raise FormatError("shard is too short for its footer")

    files = _parse_files(r)
    cas_info_offset = r.pos
    cas = _parse_cas(r)

    if footer_size == 0:
        if r.room():
            raise FormatError(f"shard has {r.room()} unexpected bytes after its CAS info section")
        return files, cas
    # Lookup tables (if any) sit between the CAS section and the footer; they are derived data: skip them.
    while r.room():
        r.read(min(r.room(), 1 << 20), "lookup tables")
    r.size = size
    footer = parse_footer(r.read(FOOTER_SIZE, "footer"))
    if (footer.file_info_offset, footer.cas_info_offset, footer.footer_offset) != (
        HEADER_SIZE,
        cas_info_offset,
        size - FOOTER_SIZE,
    ):
        raise FormatError("shard footer's section offsets do not match the shard")
    return files, cas


def _parse_files(r: _Reader) -> list[FileInfo]:
    files: list[FileInfo] = []
    with_verification: bool | None = None
    while True:
        file_hash, flags, n = _FILE_HEADER.unpack(r.read(RECORD, "file info header"))
        if file_hash == BOOKEND_HASH:
            return files
        verified = bool(flags & FLAG_VERIFICATION)
        has_ext = bool(flags & FLAG_METADATA_EXT)
        if with_verification is None:
            with_verification = verified
        elif with_verification != verified:
            raise FormatError("shard has verification entries for some files but not for others")
        need = RECORD * n * (2 if verified else 1) + (RECORD if has_ext else 0)
        if need > r.room():
            raise FormatError(
                f"file info {len(files)} declares {n} terms, more than the {r.room()} bytes left in the shard can hold"
            )
        raw_terms = r.read(RECORD * n, "file terms")
        terms = []
        for i, (xorb_hash, _flags, unpacked, start, end) in enumerate(_TERM.iter_unpack(raw_terms)):
            if end <= start:
                raise FormatError(f"file info {len(files)} term {i} has an empty chunk range [{start}, {end})")
            terms.append(Term(xorb_hash=xorb_hash, unpacked_bytes=unpacked, start=start, end=end))
        verification = None
        if verified:
            verification = [h for (h,) in _HASH_RECORD.iter_unpack(r.read(RECORD * n, "verification entries"))]
        sha256 = None
        if has_ext:
            (stored,) = _HASH_RECORD.unpack(r.read(RECORD, "file metadata extension"))
            sha256 = _swap_groups(stored)
        files.append(FileInfo(file_hash=file_hash, terms=terms, verification=verification, sha256=sha256))


def _parse_cas(r: _Reader) -> list[CasInfo]:
    cas: list[CasInfo] = []
    while True:
        xorb_hash, _flags, n, in_cas, on_disk = _CAS_HEADER.unpack(r.read(RECORD, "CAS info header"))
        if xorb_hash == BOOKEND_HASH:
            return cas
        if RECORD * n > r.room():
            raise FormatError(
                f"CAS info {len(cas)} declares {n} chunks, more than the {r.room()} bytes left in the shard can hold"
            )
        chunks = [
            CasChunk(hash=h, byte_start=start, unpacked_bytes=unpacked)
            for h, start, unpacked, _chunk_flags, _unused in _CAS_CHUNK.iter_unpack(r.read(RECORD * n, "CAS chunks"))
        ]
        cas.append(CasInfo(xorb_hash=xorb_hash, chunks=chunks, bytes_in_cas=in_cas, bytes_on_disk=on_disk))


def _swap_groups(h: bytes) -> bytes:
    """Reverse each 8-byte group: between a SHA-256 digest and the way a shard stores it."""
    return b"".join(h[i : i + 8][::-1] for i in range(0, 32, 8))


def _truncated(h: bytes) -> int:
    """The first 8 bytes of a hash as a little-endian u64: the key of the lookup tables."""
    return int.from_bytes(h[:8], "little")


def serialize_shard(
    files: list[FileInfo],
    cas: list[CasInfo],
    *,
    hmac_key: bytes | None = None,
    expiry: int = 0,
    with_footer: bool = True,
) -> bytes:
    """A shard holding ``files`` and ``cas``, as the reference client and server write them.

    With ``hmac_key``, every chunk hash in the CAS section is replaced by ``hmac(hash, hmac_key)`` and the key goes
    into the footer (what a global dedupe answer looks like). The footer also carries the creation time and
    ``expiry`` (seconds since the epoch), and is preceded by the lookup tables that index the two sections.
    """
    if hmac_key is not None and len(hmac_key) != 32:
        raise ValueError("an HMAC key has 32 bytes")
    out = [_HEADER.pack(HEADER_TAG, HEADER_VERSION, FOOTER_SIZE if with_footer else 0)]

    file_lookup: list[tuple[int, int]] = []
    index = 0
    for f in files:
        if f.verification is not None and len(f.verification) != len(f.terms):
            raise ValueError("a file needs one verification hash per term")
        flags = (FLAG_VERIFICATION if f.verification is not None else 0) | (
            FLAG_METADATA_EXT if f.sha256 is not None else 0
        )
        file_lookup.append((_truncated(f.file_hash), index))
        records = [_FILE_HEADER.pack(f.file_hash, flags, len(f.terms))]
        records += [_TERM.pack(t.xorb_hash, 0, t.unpacked_bytes, t.start, t.end) for t in f.terms]
        if f.verification is not None:
            records += [_HASH_RECORD.pack(h) for h in f.verification]
        if f.sha256 is not None:
            if len(f.sha256) != 32:
                raise ValueError("a SHA-256 digest has 32 bytes")
            records.append(_HASH_RECORD.pack(_swap_groups(f.sha256)))
        out += records
        index += len(records)
    out.append(_BOOKEND)
    cas_info_offset = HEADER_SIZE + RECORD * (index + 1)

    xorb_lookup: list[tuple[int, int]] = []
    chunk_lookup: list[tuple[int, int, int]] = []
    index = 0
    for x in cas:
        xorb_lookup.append((_truncated(x.xorb_hash), index))
        out.append(_CAS_HEADER.pack(x.xorb_hash, 0, len(x.chunks), x.bytes_in_cas, x.bytes_on_disk))
        for i, c in enumerate(x.chunks):
            h = keyed_hash(c.hash, hmac_key) if hmac_key is not None else c.hash
            out.append(_CAS_CHUNK.pack(h, c.byte_start, c.unpacked_bytes, 0, 0))
            chunk_lookup.append((_truncated(h), index, i))
        index += 1 + len(x.chunks)
    out.append(_BOOKEND)
    pos = cas_info_offset + RECORD * (index + 1)
    if not with_footer:
        return b"".join(out)

    file_lookup.sort(key=lambda e: e[0])
    xorb_lookup.sort(key=lambda e: e[0])
    chunk_lookup.sort(key=lambda e: e[0])
    file_lookup_offset = pos
    out += [struct.pack("<QI", k, v) for k, v in file_lookup]
    xorb_lookup_offset = file_lookup_offset + 12 * len(file_lookup)
    out += [struct.pack("<QI", k, v) for k, v in xorb_lookup]
    chunk_lookup_offset = xorb_lookup_offset + 12 * len(xorb_lookup)
    out += [struct.pack("<QII", k, a, b) for k, a, b in chunk_lookup]
    footer_offset = chunk_lookup_offset + 16 * len(chunk_lookup)
    out.append(
        _FOOTER.pack(
            FOOTER_VERSION,
            HEADER_SIZE,
            cas_info_offset,
            file_lookup_offset,
            len(file_lookup),
            xorb_lookup_offset,
            len(xorb_lookup),
            chunk_lookup_offset,
            len(chunk_lookup),
            hmac_key if hmac_key is not None else bytes(32),
            int(time.time()),
            expiry,
            *([0] * 6),
            sum(x.bytes_on_disk for x in cas),  # stored bytes on disk
            sum(t.unpacked_bytes for f in files for t in f.terms),  # materialized bytes
            sum(x.bytes_in_cas for x in cas),  # stored bytes
            footer_offset,
        )
    )
    return b"".join(out)
