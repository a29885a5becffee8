"""Xet hashes: chunk, xorb (merkle aggregation), file and term verification hashes.

Every hash is blake3 in keyed mode, 32 bytes. The protocol's string form reads each 8-byte group of a hash as a
little-endian u64 and prints the four numbers as 16 hex digits each (docs: api.md "Converting Hashes to Strings").
"""

from collections.abc import Sequence

from blake3 import blake3

ZERO = bytes(32)

# blake3 keys fixed by the protocol (hashing.md).
DATA_KEY = bytes(
    [102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
     157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41]
)  # fmt: skip
INTERNAL_NODE_KEY = bytes(
    [1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
     93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63]
)  # fmt: skip
VERIFICATION_KEY = bytes(
    [127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
     164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195]
)  # fmt: skip

# Merkle aggregation: a group closes after a child whose hash is 0 mod 4 (mean fan-out 4), never with fewer
# than 2 children (unless fewer remain) nor more than 9.
_BRANCHING = 4
_MIN_GROUP = 2
_MAX_GROUP = 2 * _BRANCHING + 1

_HEX_DIGITS = frozenset("0123456789abcdef")


def _keyed(key: bytes, data: bytes) -> bytes:
    return blake3(data, key=key).digest()


def chunk_hash(data: bytes) -> bytes:
    """The hash of one chunk's (uncompressed) bytes."""
    return _keyed(DATA_KEY, data)


def hmac(h: bytes, key: bytes) -> bytes:
    """A hash keyed again with ``key``: what global dedupe answers publish instead of chunk hashes."""
    return _keyed(key, h)


def to_hex(h: bytes) -> str:
    """The protocol's 64-character string form of a raw hash."""
    if len(h) != 32:
        raise ValueError(f"a hash has 32 bytes, got {len(h)}")
    return b"".join(h[i : i + 8][::-1] for i in range(0, 32, 8)).hex()


def from_hex(s: str) -> bytes:
    """The raw hash for a string from ``to_hex``; ValueError unless ``s`` is 64 lowercase hex characters."""
    if not isinstance(s, str) or len(s) != 64 or not _HEX_DIGITS.issuperset(s):
        raise ValueError("a hash is written as 64 lowercase hexadecimal characters")
    raw = bytes.fromhex(s)
    return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8))


def _last_u64(h: bytes) -> int:
    return int.from_bytes(h[24:32], "little")


def dedupe_eligible(h: bytes) -> bool:
    """Whether a chunk hash is one the client asks the global dedupe API about (1 in 1024 of them)."""
    return _last_u64(h) % 1024 == 0


def _group_end(nodes: Sequence[tuple[bytes, int]], start: int) -> int:
    """Index just past the group of children that begins at ``start``."""
    remaining = len(nodes) - start
    if remaining <= _MIN_GROUP:
        return len(nodes)
    limit = start + min(_MAX_GROUP, remaining)
    for i in range(start + _MIN_GROUP, limit):
        if _last_u64(nodes[i][0]) % _BRANCHING == 0:
            return i + 1
    return limit


def _merge(group: Sequence[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{to_hex(h)} : {size}\n" for h, size in group)
    return _keyed(INTERNAL_NODE_KEY, text.encode("ascii")), sum(size for _, size in group)


def _aggregate(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    level = [(bytes(h), int(size)) for h, size in chunks]
    if not level:
        return ZERO
    while len(level) > 1:
        parents = []
        start = 0
        while start < len(level):
            end = _group_end(level, start)
            parents.append(_merge(level[start:end]))
            start = end
        level = parents
    return level[0][0]


def xorb_hash(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """The merkle root over (chunk hash, uncompressed size) pairs: a xorb's name. ZERO for no chunks."""
    return _aggregate(chunks)


def file_hash(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """A file's hash from its chunks in order: the merkle root keyed again with a zero key; ZERO when empty."""
    if not chunks:
        return ZERO
    return hmac(_aggregate(chunks), ZERO)


def verification_hash(chunk_hashes: Sequence[bytes]) -> bytes:
    """The hash proving a shard's uploader knew the chunk hashes of a term's range of a xorb."""
    return _keyed(VERIFICATION_KEY, b"".join(chunk_hashes))
