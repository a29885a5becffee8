"""Large request bodies against the real server process, started as `make run` starts it.

A refused upload (no credentials, no permission, over the size limit) is
answered from its headers while the client has sent only a small part of the
body; an accepted one streams to storage with the server's memory bounded.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.services import issue_token_pair
from routines.models import Membership, Role
from tests.conftest import ROOT, _test_db_url
from tests.hosting.conftest import publish, square_routine

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024 * 1024
LIMIT = 256 * MiB  # the server's ACC_MAX_UPLOAD_BYTES in this module
HUGE = 2 * 1024 * MiB  # what a refused client declares
SENT_AT_MOST = 64 * MiB  # a refusal must come before the client sent this much (it never sends more)
RSS_GROWTH_AT_MOST = 64 * MiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """The platform's web server in a subprocess on the test database, with storage of its own."""

    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.storage = data_dir / "storage"
        self.log_path = data_dir / "web.log"
        env = dict(os.environ)
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        env.update(
            DATABASE_URL=_test_db_url(),
            ACC_DATA_DIR=str(data_dir),
            SECRET_KEY=settings.SECRET_KEY,
            ACC_MAX_UPLOAD_BYTES=str(LIMIT),
            PYTHONUNBUFFERED="1",
        )
        argv = [sys.executable, "manage.py", "serve_web", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"the web server exited:\n{self.log()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"the web server did not start:\n{self.log()}"
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def memory(self, field: str) -> int:
        """VmRSS or VmHWM (the peak since the last reset) of the server process, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def reset_peak(self) -> int:
        """Start measuring the peak RSS afresh; returns the RSS now."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        return self.memory("VmRSS")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker, tmp_path_factory):
    server = WebServer(tmp_path_factory.mktemp("web"))
    yield server
    server.stop()


def token_of(user) -> str:
    return issue_token_pair(user=user)["access_token"]


def refused_early(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict, int]:
    """Declare a huge body and send it in pieces until the server answers; (status, JSON body, bytes sent).

    The client stops sending after SENT_AT_MOST bytes and then only waits, so a server that reads the
    whole body before it answers never answers.
    """
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sock.setblocking(False)
    piece, sent, answer = b"x" * (256 * 1024), 0, b""
    deadline = time.monotonic() + 120  # only a bound on a hung server, not a timing assertion
    try:
        while time.monotonic() < deadline:
            if sent >= SENT_AT_MOST:  # the server reads on and on: a few seconds more, then give up
                deadline = min(deadline, time.monotonic() + 10)
            want_write = [sock] if sent < SENT_AT_MOST else []
            readable, writable, _ = select.select([sock], want_write, [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                answer += data
                if b"\r\n\r\n" in answer or not data:
                    break
            elif writable:
                try:
                    sent += sock.send(piece)
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
        # the rest of a short JSON answer follows its headers at once
        sock.setblocking(True)
        sock.settimeout(10)
        while b"\r\n\r\n" in answer and len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    assert answer, f"no answer after sending {sent} bytes of a declared body"
    status = int(answer.split(b" ", 2)[1])
    body = answer.partition(b"\r\n\r\n")[2]
    return status, json.loads(body) if body.startswith(b"{") else {}, sent


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def put_body(port: int, path: str, headers: dict[str, str], chunks, *, chunked: bool = False):
    """PUT the iterable `chunks` (with a Content-Length in headers, or chunked); (status, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("PUT", path, body=chunks, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    except (BrokenPipeError, ConnectionResetError):
        response = conn.getresponse()  # the server answered and closed while the client was still sending
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def pieces(total: int, seed: bytes = b"upload"):
    """`total` bytes in 1 MiB pieces that differ from each other, so a lost or repeated piece shows."""
    block = hashlib.sha256(seed).digest() * (MiB // 32)
    sent = 0
    while sent < total:
        n = min(MiB, total - sent)
        yield (sent.to_bytes(8, "big") + block)[:n]
        sent += n


def files_url(project, path: str) -> str:
    return f"/api/v1/projects/{project.slug}/files/{path}"


def test_an_accepted_upload_streams_to_storage_in_bounded_memory(web, project, alice):
    size = 200 * MiB
    put_body(web.port, files_url(project, "warm.bin"), {"x-authorization": token_of(alice)}, [b"warm"])
    before = web.reset_peak()
    digest = hashlib.sha256()
    sent = (digest.update(piece) or piece for piece in pieces(size))
    headers = {"Content-Length": str(size), "x-authorization": token_of(alice)}
    status, body = put_body(web.port, files_url(project, "data/big.bin"), headers, sent)
    growth = web.memory("VmHWM") - before
    assert status == 201, body
    assert body == {"path": "data/big.bin", "size": size, "sha256": digest.hexdigest()}
    stored = web.storage / f"projects/{project.pk}/data/big.bin"
    assert stored.stat().st_size == size
    with open(stored, "rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == digest.hexdigest()
    assert growth < RSS_GROWTH_AT_MOST, f"the server grew by {growth // MiB} MiB during a {size // MiB} MiB upload"
    assert list((web.storage / ".staging").iterdir()) == [], "no staging file is left behind"


def download_size(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """GET `path`, reading the answer in pieces; (bytes received, their SHA-256)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()[:500]
        digest, size = hashlib.sha256(), 0
        while piece := response.read(MiB):
            digest.update(piece)
            size += len(piece)
        return size, digest.hexdigest()
    finally:
        conn.close()


def test_a_large_download_streams_in_bounded_memory(web, project, alice):
    """Django's ASGI handler would read a synchronous file iterator whole before sending a byte."""
    size = 200 * MiB
    digest = hashlib.sha256()
    sent = (digest.update(piece) or piece for piece in pieces(size, b"download"))
    status, _ = put_body(
        web.port,
        files_url(project, "out/big.bin"),
        {"Content-Length": str(size), "x-authorization": token_of(alice)},
        sent,
    )
    assert status == 201
    before = web.reset_peak()
    received, received_digest = download_size(
        web.port, files_url(project, "out/big.bin"), {"x-authorization": token_of(alice)}
    )
    growth = web.memory("VmHWM") - before
    assert (received, received_digest) == (size, digest.hexdigest())
    assert growth < RSS_GROWTH_AT_MOST, f"the server grew by {growth // MiB} MiB during a {size // MiB} MiB download"


def test_accli_copy_goes_both_ways_through_the_real_server_in_bounded_memory(web, project, alice, tmp_path):
    """The Xet endpoints on the server `make run` starts: uploads stream in, xorb ranges stream out."""
    import random

    from tests.conftest import ACCLI, web_code

    home = tmp_path / "home"
    home.mkdir()
    url = f"http://127.0.0.1:{web.port}"
    code = web_code(url, "alice", "alice-pass-123")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    login = subprocess.run(
        [ACCLI, "login", "-s", url, "-c", url], input=code + "\n", capture_output=True, text=True, env=env
    )
    assert login.returncode == 0, login.stdout + login.stderr
    data = random.Random(5).randbytes(96 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    before = web.reset_peak()
    up = subprocess.run(
        [ACCLI, "copy", str(tmp_path / "big.bin"), "acc://demo/xet/big.bin"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    up_growth = web.memory("VmHWM") - before
    assert up.returncode == 0, up.stdout + up.stderr
    assert (web.storage / f"projects/{project.pk}/xet/big.bin").read_bytes() == data
    before = web.reset_peak()
    down = subprocess.run(
        [ACCLI, "copy", "acc://demo/xet/big.bin", str(tmp_path / "back.bin")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    down_growth = web.memory("VmHWM") - before
    assert down.returncode == 0, down.stdout + down.stderr
    assert (tmp_path / "back.bin").read_bytes() == data
    assert up_growth < RSS_GROWTH_AT_MOST and down_growth < RSS_GROWTH_AT_MOST, (up_growth // MiB, down_growth // MiB)


def test_an_anonymous_huge_upload_is_refused_before_its_body_is_read(web, project):
    status, body, sent = refused_early(
        web.port, "PUT", files_url(project, "big.bin"), {"Content-Length": str(LIMIT - 1)}
    )
    assert status == 401 and body["detail"]
    assert sent < SENT_AT_MOST
    assert not (web.storage / f"projects/{project.pk}/big.bin").exists()


def test_a_stranger_and_a_viewer_are_refused_before_the_body_is_read(web, project, charlie, django_user_model):
    viewer = django_user_model.objects.create_user("victor", "victor@example.org", "victor-pass-123")
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    url, length = files_url(project, "big.bin"), str(LIMIT - 1)
    status, body, sent = refused_early(
        web.port, "PUT", url, {"Content-Length": length, "x-authorization": token_of(charlie)}
    )
    assert (status, sent < SENT_AT_MOST) == (404, True), body
    status, body, sent = refused_early(
        web.port, "PUT", url, {"Content-Length": length, "Authorization": f"Bearer {token_of(viewer)}"}
    )
    assert (status, sent < SENT_AT_MOST) == (403, True), body
    assert "viewer" in body["detail"]


def test_a_forged_jobstore_upload_url_is_refused_before_the_body_is_read(web, project):
    status, body, sent = refused_early(
        web.port, "PUT", "/api/v1/jobstore/upload/not-a-token/", {"Content-Length": str(LIMIT - 1)}
    )
    assert (status, sent < SENT_AT_MOST) == (403, True), body
    assert "signature" in body["detail"]


def test_an_upload_over_the_limit_is_refused_from_its_length(web, project, alice):
    headers = {"Content-Length": str(HUGE), "x-authorization": token_of(alice)}
    status, body, sent = refused_early(web.port, "PUT", files_url(project, "big.bin"), headers)
    assert (status, sent < SENT_AT_MOST) == (413, True), body
    assert str(LIMIT) in body["detail"] and "ACC_MAX_UPLOAD_BYTES" in body["detail"]


def test_a_large_body_on_any_other_route_is_refused_from_its_length(web, alice):
    headers = {"Content-Length": str(HUGE), "Content-Type": "application/json", "x-authorization": token_of(alice)}
    status, body, sent = refused_early(web.port, "POST", "/api/v1/routines/", headers)
    assert (status, sent < SENT_AT_MOST) == (413, True), body
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in body["detail"]


def test_a_chunked_upload_over_the_limit_is_cut_off(web, project, alice):
    status, body = put_body(
        web.port, files_url(project, "big.bin"), {"x-authorization": token_of(alice)}, pieces(LIMIT + MiB), chunked=True
    )
    assert status == 413 and str(LIMIT) in body["detail"]
    assert not (web.storage / f"projects/{project.pk}/big.bin").exists()


def test_a_chunked_body_over_the_general_limit_is_cut_off(web, alice):
    size = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + MiB
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=120)
    headers = {"x-authorization": token_of(alice), "Content-Type": "application/json"}
    try:
        conn.request("POST", "/api/v1/routines/", body=pieces(size), headers=headers, encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = conn.getresponse()
    assert response.status == 413 and str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in json.loads(response.read())["detail"]
    conn.close()


def session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.mark.parametrize("page", ["/hosted/{slug}/", "/hosted/{slug}/widget/"])
def test_a_hosted_launch_form_refuses_strangers_before_reading_its_files(web, project, alice, charlie, page):
    """Django's CSRF check reads a form's body for its token; the launch pages check who posts first."""
    model = publish(alice, square_routine(project, alice), slug="private-square", policy="private")
    url = page.format(slug=model.slug)
    form = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(LIMIT - 1)}
    csrf = f"{settings.CSRF_COOKIE_NAME}={'a' * 32}"

    status, _, sent = refused_early(web.port, "POST", url, {**form, "Cookie": csrf})
    assert (status, sent < SENT_AT_MOST) == (302, True), "signed out: to the login page, the files unread"
    stranger = f"{csrf}; {settings.SESSION_COOKIE_NAME}={session_of(charlie)}"
    status, _, sent = refused_early(web.port, "POST", url, {**form, "Cookie": stranger})
    assert (status, sent < SENT_AT_MOST) == (404, True), "a model charlie may not see: not found, the files unread"


def test_the_launch_forms_still_need_the_csrf_token_of_a_signed_in_launcher(project, alice):
    model = publish(alice, square_routine(project, alice), slug="csrf-square", policy="private")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for url in (f"/hosted/{model.slug}/", f"/hosted/{model.slug}/widget/"):
        assert client.post(url, {"conf": "{}"}).status_code == 403, url
        assert model.runs.count() == 0
