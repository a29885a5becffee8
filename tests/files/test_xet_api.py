"""The Xet CAS API (/api/xet-cas/) and accli's listing calls, spoken to directly over HTTP.

Xorbs and shards are built with files/xet as hf_xet would build them; each
test checks one of the server's rules as a client or an attacker would see it:
what is answered, and what is (not) stored.
"""

import base64
import hashlib
import io
import time

import hf_xet
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessToken
from accounts.services import issue_token_pair
from files import services, storage, xet_cas
from files.models import XetFile, Xorb, XorbAccess
from files.xet import hashes, shard, xorb
from routines.models import Membership, Project, Role
from tests.files.xet_helpers import (
    CAS,
    XorbBody,
    body_of,
    cas_client,
    cas_token,
    make_upload,
    post_bytes,
    post_shard,
    post_xorb,
    random_bytes,
    register,
    serialize,
    upload,
)

pytestmark = pytest.mark.django_db

BIG = 600_000  # random bytes: about nine chunks


@pytest.fixture
def lab(charlie):
    """Charlie's own project."""
    p = Project.objects.create(slug="lab", name="Lab")
    Membership.objects.create(project=p, user=charlie, role=Role.OWNER)
    return p


@pytest.fixture
def viewer(django_user_model, project):
    user = django_user_model.objects.create_user("vera", "vera@example.org", "vera-pass-123")
    Membership.objects.create(project=project, user=user, role=Role.VIEWER)
    return user


def stored_xorbs() -> list[str]:
    if not storage.backend().exists(xet_cas.XORB_ROOT):
        return []
    return sorted(storage.walk_files(xet_cas.XORB_ROOT))


def read_project_file(project, relpath: str) -> bytes:
    with services.open_file(project=project, relpath=relpath) as f:
        return f.read()


def exists(project, relpath: str) -> bool:
    return services.path_kind(project=project, relpath=relpath) is not None


def rebuild(response) -> bytes:
    """The bytes a reconstruction answer describes, fetched from its signed URLs (no credentials) as hf_xet does."""
    plan = response.json()
    anonymous = APIClient()
    fetched: dict[str, list[bytes]] = {}
    out = bytearray()
    for term in plan["terms"]:
        first, end = term["range"]["start"], term["range"]["end"]
        [info] = [
            i for i in plan["fetch_info"][term["hash"]] if i["range"]["start"] <= first and end <= i["range"]["end"]
        ]
        if info["url"] not in fetched:
            r = anonymous.get(info["url"], HTTP_RANGE=f"bytes={info['url_range']['start']}-{info['url_range']['end']}")
            assert r.status_code == 206, body_of(r)
            fetched[info["url"]] = xorb.decode_range(body_of(r))
        chunks = fetched[info["url"]][first - info["range"]["start"] : end - info["range"]["start"]]
        data = b"".join(chunks)
        assert len(data) == term["unpacked_length"]
        out += data
    return bytes(out[plan["offset_into_first_range"] :])


# --- 1. the happy path -----------------------------------------------------------------------------------


def test_xorb_shard_and_register_store_the_file_byte_identical(alice, project):
    up = make_upload(random_bytes(BIG), split=4)
    assert len(up.xorbs) == 2
    client = cas_client(alice)
    for x in up.xorbs:
        r = post_xorb(client, x)
        assert r.status_code == 200 and r.json() == {"was_inserted": True}
    r = post_shard(client, up.shard())
    assert r.status_code == 200 and r.json() == {"result": 1}

    r = register(client, [up.item("demo/x/a.bin")])
    assert r.status_code == 200, r.content
    assert r.json() == {
        "registered": [{"path": "x/a.bin", "size": BIG, "sha256": up.sha256, "merkle_hash": up.file_hex}]
    }
    assert read_project_file(project, "x/a.bin") == up.data

    # The file API sees it, and file-stat answers the hash the upload named.
    stat = APIClient()
    stat.credentials(HTTP_X_AUTHORIZATION=issue_token_pair(user=alice)["access_token"])
    r = stat.post("/api/v1/aterm-cli/demo/file-stat/", {"filename": "/x/a.bin"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"filename": "demo/x/a.bin", "size": BIG, "merkle_hash": up.file_hex, "sha256": up.sha256}


def test_serialize_shard_writes_verification_entries_and_the_sha256_extension():
    up = make_upload(random_bytes(100_000))
    body = up.shard()
    [info], [cas] = shard.parse_shard(io.BytesIO(body), size=len(body))
    assert info.verification == up.info.verification and info.sha256 == hashlib.sha256(up.data).digest()
    assert cas.xorb_hash == up.xorbs[0].raw


# --- 2. xorb uploads are checked ---------------------------------------------------------------------------


def test_xorb_not_hashing_to_its_url_is_refused_and_not_stored(alice, project):
    client = cas_client(alice)
    good, other = XorbBody([b"a" * 9000]), XorbBody([b"b" * 9000])
    r = post_bytes(client, good.url, other.body)
    assert r.status_code == 400
    assert good.hex in r.json()["detail"] and other.hex in r.json()["detail"]
    assert not Xorb.objects.exists() and stored_xorbs() == []


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[: len(b) - 100], id="truncated"),
        pytest.param(lambda b: b"\x07" + b[1:], id="bad-chunk-version"),
        pytest.param(lambda b: b"garbage, not a xorb at all", id="garbage"),
    ],
)
def test_truncated_or_garbage_xorb_is_refused(alice, project, mangle):
    x = XorbBody([random_bytes(20_000, seed=3)])
    r = post_bytes(cas_client(alice), x.url, mangle(x.body))
    assert r.status_code == 400 and r.json()["detail"]
    assert not Xorb.objects.exists() and stored_xorbs() == []


def test_xorb_over_the_size_limit_is_refused_by_its_content_length(alice, project):
    x = XorbBody([b"c" * 9000])
    # The declared length is far more than what is sent: the answer comes without reading the body.
    r = post_xorb(cas_client(alice), x, CONTENT_LENGTH=str(xet_cas.MAX_XORB_BYTES + 1))
    assert r.status_code == 413 and str(xet_cas.MAX_XORB_BYTES) in r.json()["detail"]
    assert not Xorb.objects.exists() and stored_xorbs() == []


def test_xorb_hash_in_the_url_must_be_a_hash(alice, project):
    x = XorbBody([b"d" * 9000])
    r = post_bytes(cas_client(alice), f"{CAS}/xorbs/default/{x.hex.upper()}", x.body)
    assert r.status_code == 400 and r.json()["detail"]
    r = post_bytes(cas_client(alice), f"{CAS}/xorbs/other/{x.hex}", x.body)
    assert r.status_code == 400 and r.json()["detail"]
    assert not Xorb.objects.exists()


# --- 3. one stored xorb for all projects, answers per project -----------------------------------------------


def test_same_xorb_from_two_projects_is_stored_once_and_inserted_is_per_project(alice, charlie, project, lab):
    x, y = XorbBody([random_bytes(30_000, seed=5)]), XorbBody([random_bytes(30_000, seed=6)])
    demo, mine = cas_client(alice), cas_client(charlie, "lab")

    assert post_xorb(demo, x).json() == {"was_inserted": True}
    assert post_xorb(mine, x).json() == {"was_inserted": True}  # charlie does not learn that demo has it
    assert post_xorb(mine, x).json() == {"was_inserted": False}
    assert post_xorb(demo, x).json() == {"was_inserted": False}

    assert post_xorb(mine, y).json() == {"was_inserted": True}  # the other way round
    assert post_xorb(demo, y).json() == {"was_inserted": True}
    assert post_xorb(demo, y).json() == {"was_inserted": False}

    assert Xorb.objects.filter(hash=x.hex).count() == 1 and Xorb.objects.count() == 2
    assert stored_xorbs() == sorted([x.hex, y.hex])
    assert XorbAccess.objects.filter(xorb__hash=x.hex).count() == 2


# --- 4. isolation -------------------------------------------------------------------------------------------


@pytest.fixture
def demo_file(alice, project):
    """A file uploaded (xorb and shard) to demo; its first chunk is known to global dedupe."""
    up = make_upload(random_bytes(200_000, seed=11))
    upload(cas_client(alice), up)
    return up


def dedupe_url(chunk: bytes) -> str:
    return f"{CAS}/chunks/default/{hashes.to_hex(hashes.chunk_hash(chunk))}"


def test_member_finds_their_chunk_in_global_dedupe(alice, demo_file):
    r = cas_client(alice).get(dedupe_url(demo_file.chunks[0]))
    assert r.status_code == 200
    _, [cas] = shard.parse_shard(io.BytesIO(r.content), size=len(r.content))
    assert cas.xorb_hash == demo_file.xorbs[0].raw
    # Chunk hashes are keyed (HMAC) in the answer: not readable as they are.
    assert hashes.chunk_hash(demo_file.chunks[0]) not in [c.hash for c in cas.chunks]


def test_stranger_with_a_token_for_demo_learns_nothing(charlie, demo_file):
    client = cas_client(charlie, "demo")
    nobody = client.get(dedupe_url(b"a chunk nobody has" * 1000))
    has = client.get(dedupe_url(demo_file.chunks[0]))
    assert has.status_code == nobody.status_code == 404
    assert has.json() == nobody.json()
    r = client.get(f"{CAS}/reconstructions/{demo_file.file_hex}")
    assert r.status_code == 404 and r.json() == nobody.json()


def test_stranger_with_his_own_project_cannot_reach_demo_data(charlie, project, lab, demo_file):
    client = cas_client(charlie, "lab")
    nobody = client.get(dedupe_url(b"a chunk nobody has" * 1000))
    has = client.get(dedupe_url(demo_file.chunks[0]))
    assert has.status_code == nobody.status_code == 404
    assert has.json() == nobody.json()

    # A shard naming demo's xorb (whose chunk hashes he may know): refused, nothing recorded.
    r = post_shard(client, demo_file.shard())
    assert r.status_code == 400 and demo_file.xorbs[0].hex in r.json()["detail"]
    assert not XetFile.objects.filter(project=lab).exists()

    r = client.get(f"{CAS}/reconstructions/{demo_file.file_hex}")
    assert r.status_code == 404

    r = register(client, [demo_file.item("demo/stolen.bin")], slug="lab")
    assert r.status_code == 400 and "lab/" in r.json()["detail"]
    r = register(client, [demo_file.item("lab/stolen.bin")], slug="lab")
    assert r.status_code == 400 and demo_file.file_hex in r.json()["detail"]
    assert not exists(lab, "stolen.bin") and not exists(project, "stolen.bin")


def test_knowing_a_xorb_hash_without_its_bytes_gains_no_access(charlie, lab, demo_file):
    client = cas_client(charlie, "lab")
    x = demo_file.xorbs[0]
    for body in (x.body[:-10], XorbBody([b"other data" * 1000]).body, b""):
        r = post_bytes(client, x.url, body)
        assert r.status_code == 400 and r.json()["detail"]
    assert not XorbAccess.objects.filter(project=lab).exists()
    assert post_shard(client, demo_file.shard()).status_code == 400
    assert not XetFile.objects.filter(project=lab).exists()


def test_bulk_register_project_header_must_match_the_token(alice, project, lab, demo_file):
    r = register(cas_client(alice), [demo_file.item("demo/a.bin")], slug="lab")
    assert r.status_code == 400 and "X-Project-Slug" in r.json()["detail"]
    assert not exists(project, "a.bin")


# --- 5. viewers read, never write; refused before the body is read -------------------------------------------


def test_viewer_reads_reconstructions_and_dedupe(viewer, demo_file):
    client = cas_client(viewer)
    assert client.get(dedupe_url(demo_file.chunks[0])).status_code == 200
    r = client.get(f"{CAS}/reconstructions/{demo_file.file_hex}")
    assert r.status_code == 200
    assert rebuild(r) == demo_file.data


def test_viewer_may_not_upload_and_is_refused_before_the_body(viewer, project):
    up = make_upload(random_bytes(50_000, seed=13))
    client = cas_client(viewer)
    # The declared length is far larger than what is sent: the test client fails loudly if the server
    # tries to read past what was sent, so a 403 here means the body was never read.
    huge = {"CONTENT_LENGTH": str(60 * 1024 * 1024)}
    for r in (
        post_xorb(client, up.xorbs[0], **huge),
        post_shard(client, up.shard(), **huge),
        client.generic(
            "POST",
            f"{CAS}/cas/bulk-register",
            b'{"items": [',
            content_type="application/json",
            HTTP_X_PROJECT_SLUG="demo",
            **huge,
        ),
    ):
        assert r.status_code == 403 and "viewer" in r.json()["detail"]
    # And with honest bodies: still refused, nothing stored.
    assert post_xorb(client, up.xorbs[0]).status_code == 403
    assert post_shard(client, up.shard()).status_code == 403
    assert register(client, [up.item("demo/v.bin")]).status_code == 403
    assert not Xorb.objects.exists() and stored_xorbs() == []
    assert not XetFile.objects.exists() and not exists(project, "v.bin")


# --- 6. shard checks ----------------------------------------------------------------------------------------


@pytest.fixture
def sent_xorb(alice, project):
    """A multi-chunk file whose xorb demo has uploaded (but no shard yet)."""
    up = make_upload(random_bytes(BIG, seed=17))
    assert len(up.chunks) >= 3
    assert post_xorb(cas_client(alice), up.xorbs[0]).status_code == 200
    return up


def test_shard_term_past_the_xorb_end_is_refused(alice, sent_xorb):
    up = sent_xorb
    n = len(up.chunks)
    term = shard.Term(xorb_hash=up.xorbs[0].raw, unpacked_bytes=len(up.data) + 1, start=0, end=n + 1)
    r = post_shard(cas_client(alice), up.shard(terms=[term]))
    assert r.status_code == 400 and f"[0, {n + 1})" in r.json()["detail"]
    assert not XetFile.objects.exists()


def test_shard_with_a_wrong_verification_hash_is_refused(alice, sent_xorb):
    up = sent_xorb
    wrong = hashes.verification_hash([hashes.chunk_hash(c) for c in up.chunks[1:]])
    r = post_shard(cas_client(alice), up.shard(verification=[wrong]))
    assert r.status_code == 400 and "verification" in r.json()["detail"]
    assert not XetFile.objects.exists()


def test_shard_without_verification_entries_is_refused(alice, sent_xorb):
    r = post_shard(cas_client(alice), sent_xorb.shard(verification=None))
    assert r.status_code == 400 and "verification" in r.json()["detail"]
    assert not XetFile.objects.exists()


def test_shard_with_a_wrong_file_hash_is_refused(alice, sent_xorb):
    up = sent_xorb
    # The hash of the file without its last chunk: a real hash, just not of these terms.
    wrong = hashes.file_hash([(hashes.chunk_hash(c), len(c)) for c in up.chunks[:-1]])
    r = post_shard(cas_client(alice), up.shard(file_hash=wrong))
    assert r.status_code == 400 and "file hash" in r.json()["detail"]
    assert not XetFile.objects.exists()


def test_shard_without_the_sha256_extension_is_refused(alice, sent_xorb):
    r = post_shard(cas_client(alice), sent_xorb.shard(sha256=None))
    assert r.status_code == 400 and "SHA-256" in r.json()["detail"]
    assert not XetFile.objects.exists()


def test_shard_with_a_wrong_term_length_is_refused(alice, sent_xorb):
    up = sent_xorb
    term = shard.Term(xorb_hash=up.xorbs[0].raw, unpacked_bytes=len(up.data) - 1, start=0, end=len(up.chunks))
    r = post_shard(cas_client(alice), up.shard(terms=[term]))
    assert r.status_code == 400 and "length" in r.json()["detail"]
    assert not XetFile.objects.exists()


def test_shard_listing_a_xorb_with_other_chunks_is_refused(alice, sent_xorb):
    up = sent_xorb
    listed = up.xorbs[0].cas_info()
    listed.chunks[0] = shard.CasChunk(hash=hashes.chunk_hash(b"x"), byte_start=0, unpacked_bytes=1)
    r = post_shard(cas_client(alice), serialize([up.info], [listed]))
    assert r.status_code == 400 and up.xorbs[0].hex in r.json()["detail"]
    assert not XetFile.objects.exists()


def test_garbage_shard_is_refused(alice, project):
    r = post_shard(cas_client(alice), b"not a shard" * 20)
    assert r.status_code == 400 and r.json()["detail"]
    assert not XetFile.objects.exists()


def test_a_shard_with_a_bad_file_records_none_of_its_files(alice, project):
    good, bad = make_upload(random_bytes(40_000, seed=19)), make_upload(random_bytes(40_000, seed=20))
    client = cas_client(alice)
    for x in good.xorbs + bad.xorbs:
        assert post_xorb(client, x).status_code == 200
    body = serialize(
        [good.info, shard.FileInfo(bad.info.file_hash, bad.info.terms, good.info.verification, bad.info.sha256)],
        [x.cas_info() for x in good.xorbs + bad.xorbs],
    )
    r = post_shard(client, body)
    assert r.status_code == 400
    assert not XetFile.objects.exists()


# --- 7. bulk-register -------------------------------------------------------------------------------------


def test_register_with_a_wrong_sha256_writes_nothing_of_the_batch(alice, project):
    client = cas_client(alice)
    first, second = make_upload(random_bytes(30_000, seed=21)), make_upload(random_bytes(30_000, seed=22))
    upload(client, first)
    upload(client, second)
    wrong = hashlib.sha256(b"something else").hexdigest()
    r = register(client, [first.item("demo/b/one.bin"), second.item("demo/b/two.bin", sha256=wrong)])
    assert r.status_code == 400 and wrong in r.json()["detail"]
    assert not exists(project, "b/one.bin") and not exists(project, "b/two.bin")


def test_register_with_the_wrong_size_writes_nothing(alice, project):
    client = cas_client(alice)
    up = make_upload(random_bytes(30_000, seed=23))
    upload(client, up)
    r = register(client, [up.item("demo/s.bin", file_size=len(up.data) + 1)])
    assert r.status_code == 400 and r.json()["detail"]
    assert not exists(project, "s.bin")


def test_register_an_unknown_merkle_hash_is_refused(alice, project):
    up = make_upload(random_bytes(30_000, seed=24))  # never uploaded
    r = register(cas_client(alice), [up.item("demo/u.bin")])
    assert r.status_code == 400 and up.file_hex in r.json()["detail"]
    assert not exists(project, "u.bin")


@pytest.mark.parametrize("name", ["demo/../lab/a.bin", "demo/x/../../a.bin", "demo/..", "demo/a/..//../b"])
def test_register_a_path_with_dotdot_is_refused(alice, project, lab, name):
    client = cas_client(alice)
    up = make_upload(random_bytes(30_000, seed=25))
    upload(client, up)
    r = register(client, [up.item(name)])
    assert r.status_code == 400 and ".." in r.json()["detail"]
    assert not exists(lab, "a.bin") and not exists(project, "a.bin") and not exists(project, "b")


def test_register_the_empty_file(alice, project):
    item = {
        "filename": "demo/e/empty.txt",
        "merkle_hash": "0" * 64,
        "sha256": hashlib.sha256(b"").hexdigest(),
        "file_size": 0,
    }
    r = register(cas_client(alice), [item])
    assert r.status_code == 200, r.content
    assert services.path_kind(project=project, relpath="e/empty.txt") == "file"
    assert read_project_file(project, "e/empty.txt") == b""


def test_register_the_empty_file_with_a_wrong_sha256_is_refused(alice, project):
    item = {"filename": "demo/e.txt", "merkle_hash": "0" * 64, "sha256": "0" * 64, "file_size": 0}
    r = register(cas_client(alice), [item])
    assert r.status_code == 400
    assert not exists(project, "e.txt")


# --- 8. reconstructions and signed fetch URLs ---------------------------------------------------------------


@pytest.fixture
def big_file(alice, project):
    """A multi-chunk file in two xorbs, uploaded to demo."""
    up = make_upload(random_bytes(BIG, seed=29), split=4)
    assert len(up.chunks) >= 7 and len(up.xorbs) == 2
    upload(cas_client(alice), up)
    return up


def chunk_starts(up) -> list[int]:
    return [sum(len(c) for c in up.chunks[:i]) for i in range(len(up.chunks) + 1)]


def test_whole_file_reconstruction_rebuilds_it(alice, big_file):
    r = cas_client(alice).get(f"{CAS}/reconstructions/{big_file.file_hex}")
    assert r.status_code == 200
    assert r.json()["offset_into_first_range"] == 0
    assert rebuild(r) == big_file.data


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda s: (s[2] + 123, s[5] + 456), id="across-xorbs"),
        pytest.param(lambda s: (s[1] + 10, s[1] + 20), id="inside-one-chunk"),
        pytest.param(lambda s: (s[4], s[4]), id="first-byte-of-second-xorb"),
        pytest.param(lambda s: (s[-2] + 5, s[-1] + 10_000), id="past-the-end"),
    ],
)
def test_range_reconstruction_rebuilds_exactly_those_bytes(alice, big_file, where):
    first, last = where(chunk_starts(big_file))
    r = cas_client(alice).get(f"{CAS}/reconstructions/{big_file.file_hex}", HTTP_RANGE=f"bytes={first}-{last}")
    assert r.status_code == 200, r.content
    want = big_file.data[first : last + 1]
    assert rebuild(r)[: last + 1 - first] == want
    # Only the chunks needed are listed.
    needed = sum(t["unpacked_length"] for t in r.json()["terms"])
    assert needed < len(big_file.data) or first == 0


def test_a_file_made_of_middle_slices_of_xorbs_registers_and_reconstructs(alice, project, big_file):
    """As hf_xet writes a file that deduplicates against earlier uploads: terms that start inside a xorb."""
    up, client = big_file, cas_client(alice)
    first, second = up.xorbs
    pieces = [(first, 1, 3), (second, 2, len(second.chunks) - 1), (first, 0, 2)]
    chunks = [c for x, a, b in pieces for c in x.chunks[a:b]]
    data = b"".join(chunks)
    info = shard.FileInfo(
        file_hash=hashes.file_hash([(hashes.chunk_hash(c), len(c)) for c in chunks]),
        terms=[
            shard.Term(xorb_hash=x.raw, unpacked_bytes=sum(len(c) for c in x.chunks[a:b]), start=a, end=b)
            for x, a, b in pieces
        ],
        verification=[hashes.verification_hash([hashes.chunk_hash(c) for c in x.chunks[a:b]]) for x, a, b in pieces],
        sha256=hashlib.sha256(data).digest(),
    )
    r = post_shard(client, serialize([info], []))
    assert r.status_code == 200, r.content
    file_hex = hashes.to_hex(info.file_hash)
    item = {"filename": "demo/slices.bin", "merkle_hash": file_hex, "sha256": info.sha256.hex(), "file_size": len(data)}
    assert register(client, [item]).status_code == 200
    assert read_project_file(project, "slices.bin") == data

    whole = client.get(f"{CAS}/reconstructions/{file_hex}")
    assert rebuild(whole) == data
    # Two terms in the first xorb (chunks [1, 3) and [0, 2)) overlap: fetched as one merged range.
    assert [i["range"] for i in whole.json()["fetch_info"][first.hex]] == [{"start": 0, "end": 3}]
    a, b = len(chunks[0]) + 7, len(data) - len(chunks[-1]) + 3
    part = client.get(f"{CAS}/reconstructions/{file_hex}", HTTP_RANGE=f"bytes={a}-{b}")
    assert part.status_code == 200
    assert rebuild(part)[: b + 1 - a] == data[a : b + 1]


def test_shard_over_the_size_limit_is_refused_by_its_content_length(alice, project):
    r = post_shard(cas_client(alice), b"x" * 100, CONTENT_LENGTH=str(xet_cas.MAX_SHARD_BYTES + 1))
    assert r.status_code == 413 and r.json()["detail"]
    assert not XetFile.objects.exists()


def test_range_starting_at_or_after_the_end_is_not_satisfiable(alice, big_file):
    client = cas_client(alice)
    size = len(big_file.data)
    for first in (size, size + 100):
        r = client.get(f"{CAS}/reconstructions/{big_file.file_hex}", HTTP_RANGE=f"bytes={first}-{first + 10}")
        assert r.status_code == 416 and r.json()["detail"]


def test_malformed_range_is_refused(alice, big_file):
    r = cas_client(alice).get(f"{CAS}/reconstructions/{big_file.file_hex}", HTTP_RANGE="bytes=10-5")
    assert r.status_code == 400 and r.json()["detail"]


def test_fetch_url_serves_its_signed_range_only(alice, big_file):
    s = chunk_starts(big_file)
    r = cas_client(alice).get(f"{CAS}/reconstructions/{big_file.file_hex}", HTTP_RANGE=f"bytes={s[5]}-{s[6]}")
    [(xorb_hex, [info])] = list(r.json()["fetch_info"].items())
    assert xorb_hex == big_file.xorbs[1].hex
    url, start, end = info["url"], info["url_range"]["start"], info["url_range"]["end"]
    assert start > 0  # not the xorb's first chunk: there are bytes before it to ask for
    anonymous = APIClient()

    ok = anonymous.get(url, HTTP_RANGE=f"bytes={start}-{end}")
    assert ok.status_code == 206 and ok["Content-Range"] == f"bytes {start}-{end}/{len(big_file.xorbs[1].body)}"
    assert body_of(ok) == big_file.xorbs[1].body[start : end + 1]

    for outside in (f"bytes={start - 1}-{end}", f"bytes={start}-{end + 1}", "bytes=0-10"):
        r = anonymous.get(url, HTTP_RANGE=outside)
        assert r.status_code == 403 and r.json()["detail"], outside

    prefix, _, token = url.rpartition("/")
    signature_flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    payload_flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for bad in (signature_flipped, payload_flipped, "not-a-token"):
        r = anonymous.get(f"{prefix}/{bad}", HTTP_RANGE=f"bytes={start}-{end}")
        assert r.status_code == 403 and r.json()["detail"]


def test_reconstruction_of_an_unknown_file_is_404_and_a_bad_hash_400(alice, big_file):
    client = cas_client(alice)
    assert client.get(f"{CAS}/reconstructions/{'1' * 64}").status_code == 404
    assert client.get(f"{CAS}/reconstructions/not-a-hash").status_code == 400


# --- 9. protocol edges and tokens ---------------------------------------------------------------------------


def test_v2_reconstructions_are_not_offered(alice, big_file):
    r = cas_client(alice).get(f"{CAS.replace('/v1', '/v2')}/reconstructions/{big_file.file_hex}")
    assert r.status_code == 501 and "v1" in r.json()["detail"]


def test_a_plain_access_token_is_not_a_cas_token(alice, project):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token_pair(user=alice)['access_token']}")
    x = XorbBody([b"p" * 9000])
    for r in (
        client.get(dedupe_url(b"p" * 9000)),
        post_xorb(client, x),
        client.get(f"{CAS}/reconstructions/{'1' * 64}"),
    ):
        assert r.status_code == 401 and r.json()["detail"]
    assert not Xorb.objects.exists()


def test_a_missing_or_forged_cas_token_is_refused(alice, project):
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer xet_session_prj_demo_aca_" + "x" * 40)
    r = forged.get(f"{CAS}/reconstructions/{'1' * 64}")
    assert r.status_code == 401 and r.json()["detail"]
    r = APIClient().get(f"{CAS}/reconstructions/{'1' * 64}")
    assert r.status_code in (401, 403) and r.json()["detail"]


def test_a_revoked_access_token_inside_a_cas_token_is_refused(alice, project):
    token = cas_token(alice, "demo")
    AccessToken.objects.filter(user=alice).update(revoked_at=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for r in (client.get(f"{CAS}/reconstructions/{'1' * 64}"), client.get("/api/v1/oauth/device/cas-token/")):
        assert r.status_code == 401 and r.json()["detail"]


def test_cas_token_refresh_returns_the_same_token_and_its_expiry(alice, project):
    token = cas_token(alice, "demo")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    r = client.get("/api/v1/oauth/device/cas-token/")
    assert r.status_code == 200, r.content
    body = r.json()
    [row] = AccessToken.objects.filter(user=alice)
    assert body["accessToken"] == token
    assert isinstance(body["exp"], int) and body["exp"] == int(row.expires_at.timestamp()) > time.time()
    assert body["casUrl"].endswith("/api/xet-cas")


# --- 10. file-stat and enumerate for any stored file ---------------------------------------------------------


def put_file(client, relpath: str, data: bytes):
    return client.put(f"/api/v1/projects/demo/files/{relpath}", data, content_type="application/octet-stream")


def test_a_file_put_through_the_files_api_is_prepared_like_hf_xet_hashes_it(alice, project, tmp_path, api):
    client = api(alice)
    data = random_bytes(BIG, seed=31)
    assert put_file(client, "web/f.bin", data).status_code == 201

    def reference(content: bytes) -> str:
        path = tmp_path / "ref.bin"
        path.write_bytes(content)
        (info,) = hf_xet.hash_files([str(path)])
        assert info.file_size == len(content)
        return info.hash

    listing = client.get(f"/api/v1/aterm-cli/demo/enumerate-all-files/{base64.b64encode(b'demo/web/').decode()}/")
    assert listing.status_code == 200 and listing.json() == ["demo/web/f.bin"]

    r = client.post("/api/v1/aterm-cli/demo/file-stat/", {"filename": "/web/f.bin"}, format="json")
    assert r.status_code == 200, r.content
    stat = r.json()
    assert stat == {
        "filename": "demo/web/f.bin",
        "size": len(data),
        "merkle_hash": reference(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    cas = cas_client(alice)
    recon = cas.get(f"{CAS}/reconstructions/{stat['merkle_hash']}")
    assert recon.status_code == 200 and rebuild(recon) == data

    new = random_bytes(BIG // 2, seed=32)
    assert put_file(client, "web/f.bin", new).status_code == 201
    r = client.post("/api/v1/aterm-cli/demo/file-stat/", {"filename": "/web/f.bin"}, format="json")
    assert r.status_code == 200
    assert r.json()["merkle_hash"] == reference(new) != stat["merkle_hash"]
    assert r.json()["size"] == len(new) and r.json()["sha256"] == hashlib.sha256(new).hexdigest()
    recon = cas.get(f"{CAS}/reconstructions/{r.json()['merkle_hash']}")
    assert recon.status_code == 200 and rebuild(recon) == new


def test_file_stat_and_enumerate_are_for_members_only(alice, charlie, project, api):
    assert put_file(api(alice), "web/f.bin", b"x").status_code == 201
    stranger = api(charlie)
    r = stranger.post("/api/v1/aterm-cli/demo/file-stat/", {"filename": "/web/f.bin"}, format="json")
    assert r.status_code == 404
    r = stranger.get(f"/api/v1/aterm-cli/demo/enumerate-all-files/{base64.b64encode(b'demo/web/').decode()}/")
    assert r.status_code == 404


def test_file_stat_of_a_missing_file_is_404(alice, project, api):
    r = api(alice).post("/api/v1/aterm-cli/demo/file-stat/", {"filename": "/nope.bin"}, format="json")
    assert r.status_code == 404 and r.json()["detail"]


def test_file_stat_of_an_empty_file_gives_the_empty_hash(alice, project, api):
    client = api(alice)
    assert put_file(client, "web/empty.txt", b"").status_code == 201
    r = client.post("/api/v1/aterm-cli/demo/file-stat/", {"filename": "/web/empty.txt"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {
        "filename": "demo/web/empty.txt",
        "size": 0,
        "merkle_hash": "0" * 64,  # what hf_xet.hash_files answers for an empty file
        "sha256": hashlib.sha256(b"").hexdigest(),
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_enumerate_lists_a_file_a_folder_or_the_whole_project(alice, project, api):
    client = api(alice)
    for relpath in ("web/f.bin", "web/sub/g.bin", "top.txt"):
        assert put_file(client, relpath, b"x").status_code == 201
    url = "/api/v1/aterm-cli/demo/enumerate-all-files/{}/"
    assert client.get(url.format(b64("demo/web/"))).json() == ["demo/web/f.bin", "demo/web/sub/g.bin"]
    assert client.get(url.format(b64("demo/web/f.bin"))).json() == ["demo/web/f.bin"]
    assert client.get(url.format(b64("demo/nothing/"))).json() == []
    assert sorted(client.get(url.format(b64("demo"))).json()) == [
        "demo/top.txt",
        "demo/web/f.bin",
        "demo/web/sub/g.bin",
    ]
    for bad in (b64("other/web/"), b64("demo/../lab/"), "%%%"):
        r = client.get(url.format(bad))
        assert r.status_code == 400 and r.json()["detail"], bad
