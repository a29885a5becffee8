"""The Xet format library (files/xet) against the real client library, hf_xet: same chunks and file hashes, and the
xorbs and shards hf_xet writes read back consistently. Plain functions, no database."""

import hashlib
import io
import random
import struct
from pathlib import Path

import hf_xet
import numpy as np
import pytest

from files.xet.chunking import MASK, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, iter_chunks
from files.xet.gear_table import GEAR_TABLE
from files.xet.hashes import (
    ZERO,
    chunk_hash,
    dedupe_eligible,
    file_hash,
    from_hex,
    hmac,
    to_hex,
    verification_hash,
    xorb_hash,
)
from files.xet.shard import (
    FOOTER_SIZE,
    CasChunk,
    CasInfo,
    FileInfo,
    Term,
    parse_footer,
    parse_shard,
    serialize_shard,
)
from files.xet.xorb import (
    SCHEME_BG4_LZ4,
    SCHEME_LZ4,
    SCHEME_NONE,
    FormatError,
    bg4_join,
    bg4_split,
    decode_chunk,
    decode_range,
    encode_chunk,
    encode_xorb,
    read_xorb,
)


def ours(data: bytes, **kw) -> str:
    return to_hex(file_hash([(chunk_hash(c), len(c)) for c in iter_chunks(io.BytesIO(data), **kw)]))


def reference(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    (info,) = hf_xet.hash_files([str(path)])
    assert info.file_size == len(data)
    return info.hash


def text_like(size: int) -> bytes:
    rng = random.Random(7)
    words = [b"model", b"weights", b"epoch", b"loss", b"0.125", b"accuracy", b"\n", b"batch", b"step", b"lr=3e-4"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


CASES = {
    "empty": b"",
    "1 byte": b"x",
    "8191 bytes": random.Random(1).randbytes(8191),
    "8192 bytes": random.Random(2).randbytes(8192),
    "8193 bytes": random.Random(3).randbytes(8193),
    "200 KiB of zeros": bytes(200 * 1024),
    "text-like 3 MB": text_like(3_000_000),
}


@pytest.mark.parametrize("name", list(CASES))
def test_file_hash_matches_hf_xet(tmp_path, name):
    data = CASES[name]
    assert ours(data) == reference(tmp_path, data)


def test_empty_file_hash_is_zero_and_has_no_chunks():
    assert list(iter_chunks(io.BytesIO(b""))) == []
    assert file_hash([]) == ZERO
    assert xorb_hash([]) == ZERO


def test_20_mib_random_file_matches_hf_xet_and_chunks_obey_the_limits(tmp_path):
    data = random.Random(20).randbytes(20 << 20)
    chunks = list(iter_chunks(io.BytesIO(data)))
    assert b"".join(chunks) == data
    assert all(MIN_CHUNK_SIZE <= len(c) <= MAX_CHUNK_SIZE for c in chunks[:-1])
    assert to_hex(file_hash([(chunk_hash(c), len(c)) for c in chunks])) == reference(tmp_path, data)


def spec_chunk_lengths(data: bytes) -> list[int]:
    """The chunking pseudocode of the protocol's documentation, one byte at a time."""
    h, start, out = 0, 0, []
    for i, byte in enumerate(data):
        h = ((h << 1) + GEAR_TABLE[byte]) & ((1 << 64) - 1)
        size = i + 1 - start
        if size >= MIN_CHUNK_SIZE and (size >= MAX_CHUNK_SIZE or h & MASK == 0):
            out.append(size)
            start, h = i + 1, 0
    if start < len(data):
        out.append(len(data) - start)
    return out


def test_chunks_equal_the_byte_by_byte_definition():
    data = random.Random(8).randbytes(400_000) + bytes(150_000) + text_like(300_000)
    expected = spec_chunk_lengths(data)
    assert len(expected) > 5
    assert [len(c) for c in iter_chunks(io.BytesIO(data))] == expected
    assert [len(c) for c in iter_chunks(io.BytesIO(data), block=50_000)] == expected


def test_zeros_are_cut_at_the_maximum_chunk_size():
    chunks = list(iter_chunks(io.BytesIO(bytes(300 * 1024))))
    assert [len(c) for c in chunks] == [MAX_CHUNK_SIZE, MAX_CHUNK_SIZE, 300 * 1024 - 2 * MAX_CHUNK_SIZE]


def test_small_blocks_give_the_same_chunks_as_the_default_block(tmp_path):
    data = random.Random(4).randbytes(3_000_000) + bytes(400_000) + text_like(500_000)
    default = [len(c) for c in iter_chunks(io.BytesIO(data))]
    boundaries = [sum(default[: i + 1]) for i in range(len(default))]
    # Block edges everywhere, also exactly on chunk boundaries and within 64 bytes of them.
    for block in (4096, 10_007, boundaries[0], boundaries[0] - 30, boundaries[2] + 17, 1 << 20):
        assert [len(c) for c in iter_chunks(io.BytesIO(data), block=block)] == default, block
    assert ours(data, block=8191) == reference(tmp_path, data)
    # Tiny blocks (each costs a numpy pass, so on shorter pieces).
    piece = data[:200_000]
    expected = [len(c) for c in iter_chunks(io.BytesIO(piece))]
    assert len(expected) > 1
    for block in (63, 64, 65):
        assert [len(c) for c in iter_chunks(io.BytesIO(piece), block=block)] == expected, block
    piece = data[:20_000]
    assert [len(c) for c in iter_chunks(io.BytesIO(piece), block=1)] == [len(c) for c in iter_chunks(io.BytesIO(piece))]
    piece = bytes(140_000) + data[:20_000]  # a forced cut at 128 KiB, then a short last chunk
    assert [len(c) for c in iter_chunks(io.BytesIO(piece), block=7)] == [MAX_CHUNK_SIZE, len(piece) - MAX_CHUNK_SIZE]


def test_a_file_whose_chunks_end_on_block_edges_matches_hf_xet(tmp_path):
    data = random.Random(5).randbytes(2_000_000)
    first = len(next(iter_chunks(io.BytesIO(data))))
    # Blocks as long as the first chunk: its end is a block edge, the next chunk starts a block.
    assert ours(data, block=first) == reference(tmp_path, data)
    # A file that ends exactly on a chunk boundary that is also the end of a block.
    assert ours(data[:first], block=first) == reference(tmp_path, data[:first])


def test_chunker_reads_a_stream_in_bounded_pieces():
    class Counting(io.RawIOBase):
        def __init__(self, size):
            self.left = size
            self.largest = 0

        def readable(self):
            return True

        def read(self, n=-1):
            n = self.left if n < 0 else min(n, self.left)
            self.largest = max(self.largest, n)
            self.left -= n
            return random.Random(n).randbytes(n)

    stream = Counting(40 << 20)
    total = sum(len(c) for c in iter_chunks(stream, block=1 << 20))
    assert total == 40 << 20
    assert stream.largest <= 1 << 20


def test_hash_string_form():
    raw = bytes(range(32))
    assert to_hex(raw) == "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
    assert from_hex(to_hex(raw)) == raw
    for bad in ("", "0" * 63, "0" * 65, "A" * 64, "g" * 64, " " + "0" * 63):
        with pytest.raises(ValueError):
            from_hex(bad)


def test_dedupe_eligibility_reads_the_last_eight_bytes():
    assert dedupe_eligible(bytes(32))
    assert dedupe_eligible(bytes(24) + (1024 * 5).to_bytes(8, "little"))
    assert not dedupe_eligible(bytes(24) + (1024 * 5 + 1).to_bytes(8, "little"))
    assert dedupe_eligible(b"\xff" * 24 + bytes(8))  # the first 24 bytes do not count
    assert not dedupe_eligible(bytes(24) + b"\x01" + bytes(7))


def test_hmac_changes_the_hash_and_depends_on_the_key():
    h = chunk_hash(b"abc")
    assert hmac(h, bytes(32)) != h
    assert hmac(h, bytes(32)) != hmac(h, b"\x01" * 32)


# -- xorbs and shards written by hf_xet itself through its local:// endpoint --


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory):
    """Files uploaded with hf_xet to a local directory, and the xorbs and shards it wrote there."""
    root = tmp_path_factory.mktemp("xet")
    inputs = {
        "random.bin": random.Random(11).randbytes(5_000_000),
        "text.txt": text_like(2_500_000),
        "floats.bin": np.random.default_rng(12).normal(size=300_000).astype(np.float32).tobytes(),
        "zeros.bin": bytes(300 * 1024),
    }
    paths = []
    for name, data in inputs.items():
        (root / name).write_bytes(data)
        paths.append(str(root / name))
    store = root / "store"
    infos = hf_xet.upload_files(paths, f"local://{store}", None, None, None, None, None, None, False)
    return {
        "inputs": inputs,
        "infos": {Path(p).name: info for p, info in zip(paths, infos, strict=True)},
        "xorbs": sorted((store / "xet" / "xorbs" / "xorbs").glob("default.*")),
        "shards": sorted((store / "xet" / "xorbs" / "shards").glob("*.mdb")),
    }


def read_xorb_file(path: Path) -> list:
    with path.open("rb") as f:
        return list(read_xorb(f, max_bytes=64 << 20))


def test_hf_xet_upload_wrote_xorbs_and_a_shard(uploaded):
    assert uploaded["xorbs"]
    assert uploaded["shards"]
    for name, info in uploaded["infos"].items():
        assert info.hash == ours(uploaded["inputs"][name])
        assert info.sha256 == hashlib.sha256(uploaded["inputs"][name]).hexdigest()


def test_xorbs_written_by_hf_xet_read_back_to_their_names(uploaded):
    schemes = set()
    for path in uploaded["xorbs"]:
        raw = path.read_bytes()
        chunks = read_xorb_file(path)
        assert to_hex(xorb_hash([(c.hash, len(c.data)) for c in chunks])) == path.name.split(".", 1)[1]
        assert [c.index for c in chunks] == list(range(len(chunks)))
        for c in chunks:
            schemes.add(raw[c.offset + 4])
        # The chunks run back to back from offset 0; what follows the last one is the footer.
        assert chunks[0].offset == 0
        assert all(a.offset + a.stored_len == b.offset for a, b in zip(chunks, chunks[1:], strict=False))
        end = chunks[-1].offset + chunks[-1].stored_len
        assert raw[end:].startswith(b"XETBLOB")
        # A downloaded range of chunks decodes to the same bytes.
        middle = chunks[1 : len(chunks) - 1] or chunks
        start, stop = middle[0].offset, middle[-1].offset + middle[-1].stored_len
        assert decode_range(raw[start:stop], expected_chunks=len(middle)) == [c.data for c in middle]
    # Random data is stored as is, text as LZ4, floats with byte grouping.
    assert schemes == {SCHEME_NONE, SCHEME_LZ4, SCHEME_BG4_LZ4}


def test_shards_written_by_hf_xet_describe_the_files_and_xorbs(uploaded):
    xorbs = {}
    for path in uploaded["xorbs"]:
        chunks = read_xorb_file(path)
        xorbs[from_hex(path.name.split(".", 1)[1])] = chunks
    described_files = {}
    for path in uploaded["shards"]:
        raw = path.read_bytes()
        files, cas = parse_shard(io.BytesIO(raw), size=len(raw))
        for x in cas:
            chunks = xorbs[x.xorb_hash]
            assert [c.hash for c in x.chunks] == [c.hash for c in chunks]
            # byte_start counts uncompressed bytes: where the chunk starts in the xorb's unpacked content.
            assert [c.byte_start for c in x.chunks] == [
                sum(len(c.data) for c in chunks[:i]) for i in range(len(chunks))
            ]
            assert [c.unpacked_bytes for c in x.chunks] == [len(c.data) for c in chunks]
            assert x.bytes_in_cas == sum(len(c.data) for c in chunks)
        for f in files:
            described_files[to_hex(f.file_hash)] = f
            assert f.verification is not None and len(f.verification) == len(f.terms)
            content = b""
            for term, proof in zip(f.terms, f.verification, strict=True):
                chunks = xorbs[term.xorb_hash][term.start : term.end]
                assert term.unpacked_bytes == sum(len(c.data) for c in chunks)
                assert proof == verification_hash([c.hash for c in chunks])
                content += b"".join(c.data for c in chunks)
            assert to_hex(f.file_hash) == ours(content)
            assert f.sha256 == hashlib.sha256(content).digest()
        # Our serializer writes the same bytes up to the footer (which holds a creation time).
        again = serialize_shard(files, cas)
        assert again[:-FOOTER_SIZE] == raw[:-FOOTER_SIZE]
        assert parse_shard(io.BytesIO(again), size=len(again)) == (files, cas)
    for name, info in uploaded["infos"].items():
        if uploaded["inputs"][name]:
            assert info.hash in described_files


# -- round trips with our own serialization --


@pytest.mark.parametrize("scheme", [SCHEME_NONE, SCHEME_LZ4, SCHEME_BG4_LZ4])
@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 4096, 65_537, MAX_CHUNK_SIZE])
def test_chunk_encoding_round_trips(scheme, size):
    data = text_like(size)
    payload = encode_chunk(data, scheme=scheme)[8:]
    header = encode_chunk(data, scheme=scheme)[:8]
    stored_scheme = header[4]
    assert int.from_bytes(header[5:8], "little") == size
    assert int.from_bytes(header[1:4], "little") == len(payload)
    assert decode_chunk(stored_scheme, payload, size) == data
    if scheme != SCHEME_NONE and size >= 4096:
        assert stored_scheme == scheme and len(payload) < size


def test_incompressible_chunk_is_stored_as_is():
    data = random.Random(9).randbytes(50_000)
    encoded = encode_chunk(data)
    assert encoded[4] == SCHEME_NONE and encoded[8:] == data


def test_byte_grouping_puts_every_fourth_byte_together():
    data = bytes(range(10))
    assert bg4_split(data) == bytes([0, 4, 8, 1, 5, 9, 2, 6, 3, 7])
    for n in range(0, 13):
        d = bytes(range(n))
        assert bg4_join(bg4_split(d)) == d


def test_encoded_xorb_reads_back():
    chunks = [text_like(10_000), random.Random(1).randbytes(70_000), bytes(MAX_CHUNK_SIZE), b"z"]
    raw = encode_xorb(chunks)
    read = list(read_xorb(io.BytesIO(raw), max_bytes=len(raw)))
    assert [c.data for c in read] == chunks
    assert [c.hash for c in read] == [chunk_hash(c) for c in chunks]
    assert read[-1].offset + read[-1].stored_len == len(raw)
    assert decode_range(raw) == chunks


def xorb_error(raw: bytes, **kw) -> str:
    kw.setdefault("max_bytes", 64 << 20)
    with pytest.raises(FormatError) as info:
        list(read_xorb(io.BytesIO(raw), **kw))
    return str(info.value)


def test_malformed_xorbs_are_refused_with_a_reason():
    good = encode_xorb([text_like(20_000), random.Random(2).randbytes(20_000)])
    assert "truncated" in xorb_error(good[:-5])
    assert "truncated" in xorb_error(good[:3])
    assert "no chunks" in xorb_error(b"")
    assert "limit" in xorb_error(good, max_bytes=len(good) - 1)
    assert "more than 1 chunks" in xorb_error(good, max_chunks=1)
    assert "version" in xorb_error(b"\x07" + good[1:])
    assert "empty chunk" in xorb_error(bytes(8) + good)
    assert "scheme" in xorb_error(good[:4] + b"\x09" + good[5:])
    too_big = MAX_CHUNK_SIZE + 1
    assert "larger than" in xorb_error(
        bytes([0]) + too_big.to_bytes(3, "little") + b"\x00" + too_big.to_bytes(3, "little")
    )
    # A header that claims more uncompressed bytes than the payload holds.
    lz = encode_chunk(text_like(20_000), scheme=SCHEME_LZ4)
    wrong_size = lz[:5] + (20_001).to_bytes(3, "little") + lz[8:]
    assert "20001" in xorb_error(wrong_size)
    corrupt = lz[:8] + b"\x00" * (len(lz) - 8)
    assert "LZ4" in xorb_error(corrupt)
    with pytest.raises(FormatError):
        decode_range(good, expected_chunks=3)
    with pytest.raises(FormatError):
        decode_range(good[:-1])


def test_a_footer_that_disagrees_with_the_chunks_is_refused(uploaded):
    raw = uploaded["xorbs"][0].read_bytes()
    chunks = read_xorb_file(uploaded["xorbs"][0])
    end = chunks[-1].offset + chunks[-1].stored_len
    footer = bytearray(raw[end:])
    footer[8] ^= 1  # the xorb hash in the footer
    assert "hash" in xorb_error(raw[:end] + bytes(footer))
    assert "footer" in xorb_error(raw + b"\x00")
    assert "footer" in xorb_error(raw[:-1])
    # Dropping the last chunk leaves a footer for one chunk more.
    assert "footer" in xorb_error(raw[: chunks[-1].offset] + raw[end:])


def sample_shard_parts():
    chunks = [text_like(9000 + i) for i in range(5)]
    hashes = [chunk_hash(c) for c in chunks]
    pairs = [(h, len(c)) for h, c in zip(hashes, chunks, strict=True)]
    offsets, pos = [], 0
    for c in chunks:
        offsets.append(pos)
        pos += len(encode_chunk(c))
    xh = xorb_hash(pairs)
    cas = [
        CasInfo(
            xorb_hash=xh,
            chunks=[
                CasChunk(hash=h, byte_start=o, unpacked_bytes=len(c))
                for h, o, c in zip(hashes, offsets, chunks, strict=True)
            ],
            bytes_in_cas=sum(len(c) for c in chunks),
            bytes_on_disk=pos,
        )
    ]
    files = [
        FileInfo(
            file_hash=file_hash(pairs[1:4]),
            terms=[Term(xorb_hash=xh, unpacked_bytes=sum(len(c) for c in chunks[1:4]), start=1, end=4)],
            verification=[verification_hash(hashes[1:4])],
            sha256=hashlib.sha256(b"".join(chunks[1:4])).digest(),
        ),
        FileInfo(
            file_hash=file_hash(pairs[:1] + pairs[:1]),
            terms=[Term(xorb_hash=xh, unpacked_bytes=len(chunks[0]), start=0, end=1)] * 2,
            verification=[verification_hash(hashes[:1])] * 2,
            sha256=None,
        ),
    ]
    return files, cas


@pytest.mark.parametrize("with_footer", [True, False])
def test_shard_round_trips(with_footer):
    files, cas = sample_shard_parts()
    raw = serialize_shard(files, cas, with_footer=with_footer)
    assert parse_shard(io.BytesIO(raw), size=len(raw)) == (files, cas)
    without_files = serialize_shard([], cas, with_footer=with_footer)
    assert parse_shard(io.BytesIO(without_files), size=len(without_files)) == ([], cas)


def test_dedupe_answer_shard_hides_chunk_hashes_behind_the_key():
    files, cas = sample_shard_parts()
    key = bytes(range(32))
    raw = serialize_shard([], cas, hmac_key=key, expiry=1_900_000_000)
    parsed_files, parsed_cas = parse_shard(io.BytesIO(raw), size=len(raw))
    assert parsed_files == []
    assert [c.hash for c in parsed_cas[0].chunks] == [hmac(c.hash, key) for c in cas[0].chunks]
    assert [c.byte_start for c in parsed_cas[0].chunks] == [c.byte_start for c in cas[0].chunks]
    footer = parse_footer(raw[-FOOTER_SIZE:])
    assert footer.hmac_key == key
    assert footer.expiry == 1_900_000_000
    assert footer.created > 1_700_000_000
    assert footer.footer_offset == len(raw) - FOOTER_SIZE
    # The chunk lookup table lists the keyed hashes' first 8 bytes, sorted, as the client's index expects.
    lookup_start = struct.unpack_from("<Q", raw, len(raw) - FOOTER_SIZE + 56)[0]
    n = struct.unpack_from("<Q", raw, len(raw) - FOOTER_SIZE + 64)[0]
    keys = [struct.unpack_from("<Q", raw, lookup_start + 16 * i)[0] for i in range(n)]
    assert n == 5 and keys == sorted(int.from_bytes(hmac(c.hash, key)[:8], "little") for c in cas[0].chunks)


def shard_error(raw: bytes, size: int | None = None) -> str:
    with pytest.raises(FormatError) as info:
        parse_shard(io.BytesIO(raw), size=len(raw) if size is None else size)
    return str(info.value)


def test_malformed_shards_are_refused_with_a_reason():
    files, cas = sample_shard_parts()
    raw = serialize_shard(files, cas, with_footer=False)
    assert "tag" in shard_error(b"X" + raw[1:])
    assert "version" in shard_error(raw[:32] + struct.pack("<Q", 3) + raw[40:])
    assert "truncated" in shard_error(raw[:-10])
    assert "too short" in shard_error(raw[:100])
    assert "unexpected bytes" in shard_error(raw + bytes(48))
    # The stream is shorter than the size the caller announced.
    assert "truncated" in shard_error(raw[:-60], size=len(raw))
    # A file that claims a billion terms is refused before anything is allocated for them.
    huge = bytearray(raw)
    struct.pack_into("<I", huge, 48 + 36, 1_000_000_000)
    assert "1000000000 terms" in shard_error(bytes(huge))
    # The same for a xorb that claims too many chunks.
    cas_offset = len(raw) - 48 - 48 * (1 + len(cas[0].chunks))
    huge = bytearray(raw)
    struct.pack_into("<I", huge, cas_offset + 36, 4_000_000_000)
    assert "4000000000 chunks" in shard_error(bytes(huge))
    # Verification entries for one file but not another.
    mixed = serialize_shard(
        [files[0], FileInfo(files[1].file_hash, files[1].terms, None, None)], cas, with_footer=False
    )
    assert "verification" in shard_error(mixed)
    # An empty chunk range.
    empty_term = serialize_shard(
        [FileInfo(files[0].file_hash, [Term(cas[0].xorb_hash, 0, 2, 2)], None, None)], cas, with_footer=False
    )
    assert "empty chunk range" in shard_error(empty_term)
    # A footer whose offsets point elsewhere.
    with_footer = bytearray(serialize_shard(files, cas))
    struct.pack_into("<Q", with_footer, len(with_footer) - FOOTER_SIZE + 16, 4)
    assert "offsets" in shard_error(bytes(with_footer))
    bad_footer_size = raw[:40] + struct.pack("<Q", 100) + raw[48:]
    assert "footer" in shard_error(bad_footer_size)
