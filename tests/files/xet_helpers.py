"""Build what hf_xet sends (xorbs, shards, CAS tokens) with the format library in files/xet, for API tests."""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass, field, replace

from rest_framework.test import APIClient

from accounts.services import issue_token_pair
from files.xet import chunking, hashes, shard, xorb

CAS = "/api/xet-cas/v1"


def cas_token(user, slug: str) -> str:
    return f"xet_session_prj_{slug}_{issue_token_pair(user=user)['access_token']}"


def cas_client(user, slug: str = "demo") -> APIClient:
    """An APIClient that authenticates like hf_xet: `Authorization: Bearer <CAS token>`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {cas_token(user, slug)}")
    return client


def random_bytes(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


@dataclass
class XorbBody:
    chunks: list[bytes]
    raw: bytes = field(init=False)
    body: bytes = field(init=False)

    def __post_init__(self):
        self.raw = hashes.xorb_hash([(hashes.chunk_hash(c), len(c)) for c in self.chunks])
        self.body = xorb.encode_xorb(self.chunks)

    @property
    def hex(self) -> str:
        return hashes.to_hex(self.raw)

    @property
    def url(self) -> str:
        return f"{CAS}/xorbs/default/{self.hex}"

    def cas_info(self) -> shard.CasInfo:
        starts = [sum(len(c) for c in self.chunks[:i]) for i in range(len(self.chunks))]
        return shard.CasInfo(
            xorb_hash=self.raw,
            chunks=[
                shard.CasChunk(hash=hashes.chunk_hash(c), byte_start=s, unpacked_bytes=len(c))
                for c, s in zip(self.chunks, starts, strict=True)
            ],
            bytes_in_cas=sum(len(c) for c in self.chunks),
            bytes_on_disk=len(self.body),
        )


@dataclass
class Upload:
    """One file as hf_xet would upload it: its xorbs (one term each, all their chunks) and its file info."""

    data: bytes
    chunks: list[bytes]
    xorbs: list[XorbBody]
    info: shard.FileInfo

    @property
    def file_hex(self) -> str:
        return hashes.to_hex(self.info.file_hash)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def shard(self, **changes) -> bytes:
        """The shard (no footer, as clients send it) with this file and its xorbs; `changes` alter the file info."""
        return serialize([replace(self.info, **changes)], [x.cas_info() for x in self.xorbs])

    def item(self, filename: str, **changes) -> dict:
        item = {"filename": filename, "merkle_hash": self.file_hex, "sha256": self.sha256, "file_size": len(self.data)}
        return {**item, **changes}


def serialize(files: list[shard.FileInfo], cas: list[shard.CasInfo]) -> bytes:
    return shard.serialize_shard(files, cas, with_footer=False)


def make_upload(data: bytes, *, split: int | None = None) -> Upload:
    """Chunk `data`; all chunks in one xorb, or the first `split` chunks in one and the rest in a second."""
    chunks = list(chunking.iter_chunks(io.BytesIO(data)))
    groups = [chunks] if split is None else [chunks[:split], chunks[split:]]
    xorbs = [XorbBody(g) for g in groups if g]
    terms = [
        shard.Term(xorb_hash=x.raw, unpacked_bytes=sum(len(c) for c in x.chunks), start=0, end=len(x.chunks))
        for x in xorbs
    ]
    info = shard.FileInfo(
        file_hash=hashes.file_hash([(hashes.chunk_hash(c), len(c)) for c in chunks]),
        terms=terms,
        verification=[hashes.verification_hash([hashes.chunk_hash(c) for c in x.chunks]) for x in xorbs],
        sha256=hashlib.sha256(data).digest(),
    )
    return Upload(data=data, chunks=chunks, xorbs=xorbs, info=info)


def post_bytes(client: APIClient, url: str, body: bytes, **extra):
    """POST a raw body as hf_xet does (application/octet-stream); `extra` may override CONTENT_LENGTH."""
    return client.generic("POST", url, body, content_type="application/octet-stream", **extra)


def post_xorb(client: APIClient, x: XorbBody, **extra):
    return post_bytes(client, x.url, x.body, **extra)


def post_shard(client: APIClient, body: bytes, **extra):
    return post_bytes(client, f"{CAS}/shards", body, **extra)


def upload(client: APIClient, up: Upload):
    """Send every xorb and then the shard; asserts each was accepted."""
    for x in up.xorbs:
        r = post_xorb(client, x)
        assert r.status_code == 200, r.content
    r = post_shard(client, up.shard())
    assert r.status_code == 200, r.content
    assert r.json() == {"result": 1}


def register(client: APIClient, items: list[dict], slug: str = "demo"):
    return client.post(f"{CAS}/cas/bulk-register", {"items": items}, format="json", HTTP_X_PROJECT_SLUG=slug)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content
