"""Xorbs: a run of chunks, each an 8-byte header and a (maybe compressed) payload (docs: xorb.md).

Chunk header: version (0), payload size (u24 LE), compression scheme (u8), uncompressed size (u24 LE).
Schemes: 0 stored as is, 1 an LZ4 *frame*, 2 the bytes regrouped by position modulo 4 then an LZ4 frame. (The
reference client writes LZ4 frames, not bare LZ4 blocks: xet_core_structures/src/xorb_object/compression_scheme.rs.)

The client appends a footer after the chunks ("XETBLOB", the xorb hash, every chunk hash, chunk offsets, closed
by the footer's length as u32); ``read_xorb`` checks it against the chunks and does not yield it.
"""

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import lz4.frame

from .hashes import chunk_hash, to_hex, xorb_hash

MAX_CHUNK_SIZE = 128 * 1024
HEADER_SIZE = 8
CHUNK_VERSION = 0

SCHEME_NONE = 0
SCHEME_LZ4 = 1
SCHEME_BG4_LZ4 = 2
SCHEMES = (SCHEME_NONE, SCHEME_LZ4, SCHEME_BG4_LZ4)

# Footer layout (XorbObjectInfoV1 in the reference client).
FOOTER_IDENT = b"XETBLOB"
_HASHES_IDENT = b"XBLBHSH"
_BOUNDARIES_IDENT = b"XBLBBND"
_FOOTER_VERSION = 1
_HASHES_VERSION = 0
_BOUNDARIES_VERSION = 1
_FOOTER_RESERVED = 16
_FOOTER_FIXED = 7 + 1 + 32 + (7 + 1 + 4) + (7 + 1 + 4) + 4 * 3 + _FOOTER_RESERVED  # without per-chunk parts
_FOOTER_PER_CHUNK = 32 + 4 + 4


class FormatError(ValueError):
    """Bytes that are not a valid xorb, chunk or shard; the message says what is wrong."""


@dataclass(frozen=True)
class XorbChunk:
    index: int  # position of the chunk in the xorb, from 0
    offset: int  # where its header starts in the serialized xorb
    stored_len: int  # header and payload
    data: bytes  # uncompressed
    hash: bytes  # chunk_hash(data)


def pack_header(scheme: int, compressed_size: int, size: int) -> bytes:
    if not 0 <= compressed_size < 1 << 24 or not 0 <= size < 1 << 24:
        raise ValueError("chunk sizes must fit in 24 bits")
    return bytes([CHUNK_VERSION]) + compressed_size.to_bytes(3, "little") + bytes([scheme]) + size.to_bytes(3, "little")


def parse_header(header: bytes) -> tuple[int, int, int]:
    """(scheme, payload size, uncompressed size) of an 8-byte chunk header; FormatError if it is not valid."""
    if len(header) != HEADER_SIZE:
        raise FormatError(f"a chunk header has {HEADER_SIZE} bytes, got {len(header)}")
    if header[0] != CHUNK_VERSION:
        raise FormatError(f"unsupported chunk version {header[0]} (expected {CHUNK_VERSION})")
    compressed_size = int.from_bytes(header[1:4], "little")
    scheme = header[4]
    size = int.from_bytes(header[5:8], "little")
    if scheme not in SCHEMES:
        raise FormatError(f"unknown chunk compression scheme {scheme}")
    if size > MAX_CHUNK_SIZE:
        raise FormatError(f"chunk of {size} bytes is larger than the {MAX_CHUNK_SIZE} bytes a chunk may hold")
    if size == 0:
        raise FormatError("empty chunk (chunks hold at least one byte)")
    if scheme == SCHEME_NONE and compressed_size != size:
        raise FormatError(f"uncompressed chunk stores {compressed_size} bytes but declares {size}")
    return scheme, compressed_size, size


def bg4_split(data: bytes) -> bytes:
    """Byte grouping: all bytes at positions 0 mod 4, then 1 mod 4, 2 mod 4, 3 mod 4."""
    import numpy as np  # here, not at the top: every process that loads the URLs would pay for numpy

    arr = np.frombuffer(data, dtype=np.uint8)
    return b"".join(arr[g::4].tobytes() for g in range(4))


def bg4_join(grouped: bytes) -> bytes:
    """Undo ``bg4_split``: group g holds ceil((n - g) / 4) bytes."""
    import numpy as np  # here, not at the top: every process that loads the URLs would pay for numpy

    n = len(grouped)
    src = np.frombuffer(grouped, dtype=np.uint8)
    out = np.empty(n, dtype=np.uint8)
    pos = 0
    for g in range(4):
        count = (n - g + 3) // 4
        out[g::4] = src[pos : pos + count]
        pos += count
    return out.tobytes()


def _lz4_decompress(payload: bytes, size: int) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        out = decompressor.decompress(payload, max_length=size + 1)
    except RuntimeError as exc:  # the lz4 binding reports corrupt input as RuntimeError
        raise FormatError(f"chunk payload is not valid LZ4 frame data ({exc})") from None
    if len(out) != size:
        raise FormatError(f"chunk decompresses to more or fewer bytes than the {size} its header declares")
    if not decompressor.eof or decompressor.unused_data:
        raise FormatError("chunk payload is not exactly one complete LZ4 frame")
    return out


def decode_chunk(scheme: int, payload: bytes, size: int) -> bytes:
    """The uncompressed bytes of a chunk payload; FormatError on bad data or a size other than ``size``."""
    if size > MAX_CHUNK_SIZE:
        raise FormatError(f"chunk of {size} bytes is larger than the {MAX_CHUNK_SIZE} bytes a chunk may hold")
    if scheme == SCHEME_NONE:
        if len(payload) != size:
            raise FormatError(f"uncompressed chunk has {len(payload)} bytes but declares {size}")
        return bytes(payload)
    if scheme == SCHEME_LZ4:
        return _lz4_decompress(payload, size)
    if scheme == SCHEME_BG4_LZ4:
        return bg4_join(_lz4_decompress(payload, size))
    raise FormatError(f"unknown chunk compression scheme {scheme}")


def _compress(scheme: int, data: bytes) -> bytes:
    if scheme == SCHEME_NONE:
        return bytes(data)
    if scheme == SCHEME_LZ4:
        return lz4.frame.compress(data)
    if scheme == SCHEME_BG4_LZ4:
        return lz4.frame.compress(bg4_split(data))
    raise ValueError(f"unknown chunk compression scheme {scheme}")


def encode_chunk(data: bytes, *, scheme: int | None = None) -> bytes:
    """Header and payload of one chunk: LZ4 when that is smaller, else stored as is.

    ``scheme`` forces a scheme (still falling back to none if it would not save space).
    """
    if len(data) > MAX_CHUNK_SIZE:
        raise ValueError(f"a chunk holds at most {MAX_CHUNK_SIZE} bytes, got {len(data)}")
    chosen = SCHEME_LZ4 if scheme is None else scheme
    payload = _compress(chosen, data) if chosen != SCHEME_NONE else bytes(data)
    if chosen != SCHEME_NONE and len(payload) >= len(data):
        chosen, payload = SCHEME_NONE, bytes(data)
    return pack_header(chosen, len(payload), len(data)) + payload


def encode_xorb(chunks: Iterable[bytes]) -> bytes:
    """The chunks serialized one after another (no footer): the body of a xorb upload."""
    return b"".join(encode_chunk(c) for c in chunks)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    parts = []
    left = size
    while left > 0:
        got = stream.read(left)
        if not got:
            break
        parts.append(got)
        left -= len(got)
    return b"".join(parts)


def read_xorb(stream: BinaryIO, *, max_bytes: int, max_chunks: int = 8192) -> Iterator[XorbChunk]:
    """The chunks of a serialized xorb, decompressed and hashed, one at a time.

    Holds one chunk (and at the end the footer) in memory. Raises FormatError when the xorb is malformed,
    longer than ``max_bytes``, has more than ``max_chunks`` chunks or no chunk at all, or when its footer
    disagrees with its chunks. Errors can come after some chunks were yielded: the xorb is valid only once the
    iteration ends without one. The caller then compares ``xorb_hash`` of the chunks with the expected name.
    hf_xet 1.5.2 uploads xorbs without the footer; xorbs with it (as its local store writes them) are accepted too.
    """
    offset = 0
    index = 0
    seen: list[tuple[bytes, int]] = []
    ends: list[int] = []
    while True:
        header = _read_exact(stream, HEADER_SIZE)
        if not header:
            break
        if header[0] == FOOTER_IDENT[0]:  # a chunk header starts with version 0, the footer with "X"
            # The footer's size follows from the number of chunks; read one byte more to notice trailing data.
            expected = _FOOTER_FIXED + _FOOTER_PER_CHUNK * len(seen) + 4
            footer = header + _read_exact(stream, max(expected - len(header), 0) + 1)
            if offset + len(footer) > max_bytes:
                raise FormatError(f"xorb is larger than the limit of {max_bytes} bytes")
            _check_footer(footer, seen, ends)
            break
        if len(header) < HEADER_SIZE:
            raise FormatError(f"xorb is truncated: {len(header)} bytes of a chunk header at offset {offset}")
        scheme, compressed_size, size = parse_header(header)
        if index >= max_chunks:
            raise FormatError(f"xorb has more than {max_chunks} chunks")
        stored_len = HEADER_SIZE + compressed_size
        if offset + stored_len > max_bytes:
            raise FormatError(f"xorb is larger than the limit of {max_bytes} bytes")
        payload = _read_exact(stream, compressed_size)
        if len(payload) != compressed_size:
            raise FormatError(
                f"xorb is truncated: chunk {index} at offset {offset} declares {compressed_size} bytes of payload,"
                f" {len(payload)} follow"
            )
        try:
            data = decode_chunk(scheme, payload, size)
        except FormatError as exc:
            raise FormatError(f"chunk {index} at offset {offset}: {exc}") from None
        h = chunk_hash(data)
        yield XorbChunk(index=index, offset=offset, stored_len=stored_len, data=data, hash=h)
        seen.append((h, size))
        offset += stored_len
        ends.append(offset)
        index += 1
    if not seen:
        raise FormatError("xorb holds no chunks")


def _check_footer(footer: bytes, seen: list[tuple[bytes, int]], ends: list[int]) -> None:
    """Validate the footer the client appends after the chunks against the chunks read."""
    if not seen:
        raise FormatError("xorb holds no chunks")
    n = len(seen)
    if len(footer) < 4:
        raise FormatError("xorb footer is truncated")
    info_length = int.from_bytes(footer[-4:], "little")
    if info_length != len(footer) - 4:
        raise FormatError(f"xorb footer declares {info_length} bytes but {len(footer) - 4} follow the chunks")
    if info_length != _FOOTER_FIXED + _FOOTER_PER_CHUNK * n:
        raise FormatError(f"xorb footer has {info_length} bytes, which does not fit {n} chunks")
    pos = 0

    def take(size: int) -> bytes:
        nonlocal pos
        part = footer[pos : pos + size]
        pos += size
        return part

    def u32() -> int:
        return int.from_bytes(take(4), "little")

    if take(7) != FOOTER_IDENT or take(1)[0] != _FOOTER_VERSION:
        raise FormatError("xorb footer has an unknown tag or version")
    declared_hash = take(32)
    hashes_start = pos
    if take(7) != _HASHES_IDENT or take(1)[0] != _HASHES_VERSION or u32() != n:
        raise FormatError("xorb footer's chunk hash section is malformed or counts another number of chunks")
    hashes = [take(32) for _ in range(n)]
    boundaries_start = pos
    if take(7) != _BOUNDARIES_IDENT or take(1)[0] != _BOUNDARIES_VERSION or u32() != n:
        raise FormatError("xorb footer's boundary section is malformed or counts another number of chunks")
    boundaries = list(struct.unpack(f"<{n}I", take(4 * n)))
    unpacked = list(struct.unpack(f"<{n}I", take(4 * n)))
    count, hashes_from_end, boundaries_from_end = u32(), u32(), u32()
    take(_FOOTER_RESERVED)
    if count != n:
        raise FormatError("xorb footer counts another number of chunks")
    if hashes_from_end != info_length - hashes_start or boundaries_from_end != info_length - boundaries_start:
        raise FormatError("xorb footer's section offsets are wrong")
    if hashes != [h for h, _ in seen]:
        raise FormatError("xorb footer lists chunk hashes that differ from the chunks' content")
    expected_unpacked = []
    total = 0
    for _, size in seen:
        total += size
        expected_unpacked.append(total)
    if boundaries != ends or unpacked != expected_unpacked:
        raise FormatError("xorb footer's chunk offsets differ from the chunks")
    computed = xorb_hash(seen)
    if declared_hash != computed:
        raise FormatError(f"xorb footer names hash {to_hex(declared_hash)} but the chunks hash to {to_hex(computed)}")


def decode_range(data: bytes, expected_chunks: int | None = None) -> list[bytes]:
    """The uncompressed chunks of a run of serialized chunks (a downloaded byte range of a xorb)."""
    out = []
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        if len(data) - pos < HEADER_SIZE:
            raise FormatError(f"chunk range is truncated: {len(data) - pos} bytes of a chunk header at {pos}")
        scheme, compressed_size, size = parse_header(bytes(view[pos : pos + HEADER_SIZE]))
        end = pos + HEADER_SIZE + compressed_size
        if end > len(data):
            raise FormatError(f"chunk range is truncated: chunk at {pos} needs {end - len(data)} more bytes")
        try:
            out.append(decode_chunk(scheme, bytes(view[pos + HEADER_SIZE : end]), size))
        except FormatError as exc:
            raise FormatError(f"chunk {len(out)} of the range at offset {pos}: {exc}") from None
        pos = end
        if expected_chunks is not None and len(out) > expected_chunks:
            raise FormatError(f"chunk range holds more than the {expected_chunks} chunks expected")
    if expected_chunks is not None and len(out) != expected_chunks:
        raise FormatError(f"chunk range holds {len(out)} chunks, expected {expected_chunks}")
    return out
