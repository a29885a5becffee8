"""Git code sources reach public addresses only, in bounded time, and leave no process behind.

A routine's repo_url must not make the web process or a worker connect to the
platform's own network (loopback, private, link-local, ...) in any spelling of
the address; operators may allow addresses with ACC_GIT_ALLOWED_NETWORKS. A
remote that never answers holds neither a web thread nor a worker for long,
and the job says why it failed.
"""

import functools
import http.server
import os
import socket
import subprocess
import threading
import time

import pytest

from accelerator.errors import InvalidInput
from files import code
from jobs.models import Job
from routines import services
from tests.conftest import wait_for_status
from workers.services import reconcile_jobs

LOOPBACK_FORMS = [
    ("http://127.0.0.1:{port}/r.git", "a loopback address"),
    ("http://[::1]:{port6}/r.git", "a loopback address"),
    ("http://0x7f000001:{port}/r.git", "a loopback address"),
    ("http://2130706433:{port}/r.git", "a loopback address"),
    ("http://127.1:{port}/r.git", "a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/r.git", "a loopback address"),
    ("http://localhost:{port}/r.git", "a loopback address"),
    ("http://0.0.0.0:{port}/r.git", "the unspecified address"),
    ("https://127.0.0.1:{port}/r.git", "a loopback address"),
    ("ssh://git@127.0.0.1:{port}/r.git", "a loopback address"),
    ("git://127.0.0.1:{port}/r.git", "a loopback address"),
    ("git@localhost:r.git", "a loopback address"),
]
OTHER_FORMS = [
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://[fe80::1]/r.git", "a link-local address"),
    ("https://10.1.2.3/r.git", "a private address"),
    ("https://172.16.0.1/r.git", "a private address"),
    ("https://192.168.1.1/r.git", "a private address"),
    ("https://[fd00::1]/r.git", "a unique-local address"),
    ("https://224.0.0.1/r.git", "a multicast address"),
    ("https://240.0.0.1/r.git", "a reserved address"),
    ("https://100.64.0.1/r.git", "a non-public address"),
    ("https://[64:ff9b::7f00:1]/r.git", "a loopback address"),
    ("https://[2002:7f00:1::]/r.git", "a loopback address"),
]


class Listener:
    """A TCP port that records every connection and answers nothing (a tarpit when connections are kept)."""

    def __init__(self, host: str = "127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.running = False
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def listeners():
    v4, v6 = Listener("127.0.0.1"), Listener("::1")
    yield v4, v6
    v4.close()
    v6.close()


def form(url: str, v4: Listener, v6: Listener) -> str:
    return url.format(port=v4.port, port6=v6.port)


def routine_body(url: str, name: str = "from-git") -> dict:
    """A routine as the REST API takes it."""
    return {"name": name, **job_kwargs(url)}


def job_kwargs(url: str) -> dict:
    return {"docker_image": "acc-test/busybox:latest", "command": "true", "repo_url": url, "repo_branch": "main"}


def save(project, user, name: str, url: str):
    return services.save_routine(project=project, user=user, task={"name": name, "job_kwargs": job_kwargs(url)})


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes (zombies have none) that mention `text`: a /proc scan."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and pid != str(os.getpid()):
            found.append(f"{pid}: {cmdline}")
    return found


# --- at save --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url,kind", LOOPBACK_FORMS + OTHER_FORMS)
def test_a_routine_naming_a_forbidden_address_is_refused_at_save(api, project, alice, listeners, url, kind):
    v4, v6 = listeners
    response = api(alice).post("/api/v1/projects/demo/routines/", routine_body(form(url, v4, v6)), format="json")
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert kind in detail and "ACC_GIT_ALLOWED_NETWORKS" in detail, detail
    time.sleep(0.3)
    assert v4.accepted == [] and v6.accepted == [], "nothing may connect to the address while checking it"


@pytest.mark.django_db
def test_the_refusal_names_the_address_a_numeric_host_resolves_to(api, project, alice, listeners):
    url = f"http://0x7f000001:{listeners[0].port}/r.git"
    response = api(alice).post("/api/v1/projects/demo/routines/", routine_body(url), format="json")
    assert response.status_code == 400
    assert "0x7f000001 resolves to 127.0.0.1, a loopback address" in response.json()["detail"]


@pytest.mark.django_db
def test_editing_a_routine_to_a_forbidden_address_is_refused(api, project, alice, listeners):
    no_code = {"docker_image": "acc-test/busybox:latest", "command": "true"}
    routine = services.save_routine(project=project, user=alice, task={"name": "ok", "job_kwargs": no_code})
    body = routine_body(f"http://[::1]:{listeners[1].port}/r.git", name="ok")
    response = api(alice).put(f"/api/v1/routines/{routine.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert "::1 is a loopback address" in response.json()["detail"]


@pytest.mark.django_db
def test_a_public_host_name_that_does_not_resolve_yet_may_be_saved(api, project, alice):
    response = api(alice).post(
        "/api/v1/projects/demo/routines/", routine_body("https://git.example.invalid/r.git"), format="json"
    )
    assert response.status_code == 201, response.content


# --- at run ---------------------------------------------------------------------------------------------------


def test_a_job_whose_remote_is_forbidden_fails_with_the_reason_and_connects_nowhere(
    start_worker, api, project, alice, listeners, settings
):
    """The routines were saved while an operator allowed loopback; the allowance is gone when they run."""
    v4, v6 = listeners
    urls = [form(u, v4, v6) for u, _ in LOOPBACK_FORMS]
    settings.ACC_GIT_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1", "0.0.0.0"]
    routines = [save(project, alice, f"r{n}", url) for n, url in enumerate(urls)]
    settings.ACC_GIT_ALLOWED_NETWORKS = []
    start_worker("local")
    ids = []
    for routine in routines:
        response = api(alice).post(f"/api/v1/routines/{routine.pk}/run/", {}, format="json")
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    for job_id, url in zip(ids, urls, strict=True):
        job = wait_for_status(job_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=90)
        assert job.status == "FAILED", (url, job.status)
        assert "refused:" in job.message and "ACC_GIT_ALLOWED_NETWORKS" in job.message, (url, job.message)
        assert "address" in job.message
    assert v4.accepted == [] and v6.accepted == [], "neither the web process nor the worker may connect"


# --- allowed by the operator ----------------------------------------------------------------------------------


@pytest.fixture
def http_git(tmp_path):
    """A bare repository served over (dumb) HTTP on 127.0.0.1; yields (base URL, commit, requests seen)."""
    work, bare = tmp_path / "work", tmp_path / "srv" / "r.git"
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(work)], check=True)
    (work / "main.py").write_text("print('served')\n")
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "one"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    commit = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path / "srv"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", commit.strip(), seen
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_a_loopback_git_server_is_refused_without_an_allowance(project, http_git, tmp_path, settings):
    base, _, seen = http_git
    settings.ACC_GIT_ALLOWED_NETWORKS = []
    with pytest.raises(InvalidInput) as err:
        code.materialize(project=project, repo_url=f"{base}/r.git", repo_branch="main", dest=tmp_path / "c")
    assert "127.0.0.1 is a loopback address" in err.value.detail
    assert seen == []


@pytest.mark.django_db
@pytest.mark.parametrize("allowed,host", [(["127.0.0.0/8"], "127.0.0.1"), (["localhost"], "localhost")])
def test_an_allowed_loopback_git_server_serves_the_code(project, http_git, tmp_path, settings, allowed, host):
    base, commit, seen = http_git
    settings.ACC_GIT_ALLOWED_NETWORKS = allowed
    url = f"{base.replace('127.0.0.1', host)}/r.git"
    info = code.materialize(project=project, repo_url=url, repo_branch="main", dest=tmp_path / "c")
    assert info == {"kind": "git", "url": url, "commit": commit}
    assert (tmp_path / "c" / "main.py").read_text() == "print('served')\n"
    assert code.remote_commit(url, "main") == commit
    assert seen, "the server was asked"


@pytest.mark.django_db
def test_an_allowed_address_may_be_saved(api, project, alice, http_git, settings):
    settings.ACC_GIT_ALLOWED_NETWORKS = ["127.0.0.1"]
    response = api(alice).post("/api/v1/projects/demo/routines/", routine_body(f"{http_git[0]}/r.git"), format="json")
    assert response.status_code == 201, response.content


# --- a remote that never answers ------------------------------------------------------------------------------


def test_a_tarpit_remote_holds_neither_dispatch_nor_the_worker(start_worker, api, project, alice, listeners, settings):
    tarpit = listeners[0]
    url = f"http://127.0.0.1:{tarpit.port}/r.git"
    settings.ACC_GIT_ALLOWED_NETWORKS = ["127.0.0.1"]
    settings.ACC_GIT_LS_REMOTE_TIMEOUT = 1.0
    routine = save(project, alice, "tarpit", url)
    start_worker("local", extra_env={"ACC_GIT_ALLOWED_NETWORKS": "127.0.0.1", "ACC_GIT_TIMEOUT": "3"})

    started = time.monotonic()
    response = api(alice).post(f"/api/v1/routines/{routine.pk}/run/", {}, format="json")
    answered_in = time.monotonic() - started
    assert response.status_code == 201, response.content
    assert answered_in < 20, f"dispatch took {answered_in:.1f} s on a remote that never answers"

    job = wait_for_status(response.json()["id"], {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=120)
    assert job.status == "FAILED"
    assert f"git clone of {url} did not finish in 3 s" in job.message, job.message
    log = api(alice).get(f"/api/v1/jobs/{job.pk}/logs/").json()
    assert "did not finish in 3 s" in "".join(c["text"] for c in log["chunks"])
    assert processes_mentioning(f"127.0.0.1:{tarpit.port}") == [], "git and its helpers must be gone"


def test_a_job_waiting_on_git_keeps_its_heartbeat_and_a_cancel_stops_git_at_once(
    start_worker, api, project, alice, listeners, settings
):
    tarpit = listeners[0]
    url = f"http://127.0.0.1:{tarpit.port}/r.git"
    settings.ACC_GIT_ALLOWED_NETWORKS = ["127.0.0.1"]
    settings.ACC_GIT_LS_REMOTE_TIMEOUT = 1.0
    routine = save(project, alice, "stuck", url)
    worker_env = {"ACC_GIT_ALLOWED_NETWORKS": "127.0.0.1", "ACC_GIT_TIMEOUT": "600", "ACC_HEARTBEAT_EVERY": "0.5"}
    start_worker("local", extra_env=worker_env)
    job_id = api(alice).post(f"/api/v1/routines/{routine.pk}/run/", {}, format="json").json()["id"]
    wait_for_status(job_id, {"MAPPING_INPUTS", "BUILDING"}, timeout=60)
    deadline = time.monotonic() + 60
    while not processes_mentioning(f"127.0.0.1:{tarpit.port}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(f"127.0.0.1:{tarpit.port}"), "git should be waiting on the tarpit"

    settings.ACC_HEARTBEAT_TIMEOUT = 3  # six beats of the worker's 0.5 s heartbeat
    time.sleep(4)  # longer than the heartbeat timeout: a worker that gave no sign of life would be settled now
    assert reconcile_jobs()["settled"] == 0
    assert Job.objects.get(pk=job_id).status in ("MAPPING_INPUTS", "BUILDING"), "the worker is alive, waiting on git"

    assert api(alice).post(f"/api/v1/jobs/{job_id}/cancel/").status_code in (200, 202)
    job = wait_for_status(job_id, {"SUCCEEDED", "FAILED", "CANCELLED"}, timeout=60)
    assert job.status == "CANCELLED", job.message
    assert processes_mentioning(f"127.0.0.1:{tarpit.port}") == []
    assert Job.objects.get(pk=job_id).error_code == "cancelled"
