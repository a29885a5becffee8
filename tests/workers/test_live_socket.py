"""The live websocket (/ws/live/) against the real ASGI app, the Redis channel layer and a real worker.

alice owns project `demo`, bob is a member, charlie is a stranger. Jobs run on
the `local` backend in a Celery worker subprocess, which publishes through
the same Redis the consumer listens on.
"""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from accelerator.asgi import application
from jobs.models import Job, LogChunk
from tests.conftest import wait_for_status
from tests.jobflows.test_flow_runs import URL as DISPATCH_URL
from tests.jobflows.test_flow_runs import holder, task
from tests.workers.test_jobs import make_routine, run

NOT_FOUND = "Job not found, or you have no access to it."
NODE_MOVES = ["PENDING", "QUEUED", "MAPPING_INPUTS", "RUNNING", "MAPPING_OUTPUTS", "SUCCEEDED"]
# a reply the consumer owes at once; generous, as a loaded machine may take seconds for the first thread and query
REPLY = 30
PRINTER = 'for i in 1 2 3 4 5 6 7 8; do echo "line $i"; sleep 0.4; done'


@pytest.fixture
def sessions(transactional_db, alice, bob, charlie) -> dict[str, str]:
    """username -> session id of a signed-in browser."""
    ids = {}
    for user in (alice, bob, charlie):
        client = Client()
        client.force_login(user)
        ids[user.username] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return ids


@pytest.fixture
async def live(transactional_db):
    """live(session_id or None) -> a connected WebsocketCommunicator on /ws/live/; all closed at the end."""
    opened: list[WebsocketCommunicator] = []

    async def connect(session: str | None = None) -> WebsocketCommunicator:
        headers = [(b"origin", b"http://127.0.0.1")]
        if session:
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
        comm = WebsocketCommunicator(application, "/ws/live/", headers=headers)
        connected, _ = await comm.connect(timeout=REPLY)
        assert connected
        opened.append(comm)
        return comm

    yield connect
    # in parallel: a consumer may take up to channels_redis' 5 s BZPOPMIN timeout to stop
    await asyncio.gather(*(comm.disconnect(timeout=6) for comm in opened), return_exceptions=True)
    await database_sync_to_async(connections.close_all)()  # the thread the consumers' queries ran on


def db(fn, *args, **kwargs):
    """Run sync (ORM) code from the test's event loop; its connection is closed after each call."""
    return database_sync_to_async(fn)(*args, **kwargs)


async def receive_until(comm, done, timeout: float = 30) -> list[dict]:
    """Messages until done(message) is true (that one included); fails after `timeout` seconds."""
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"gave up waiting; got {messages}"
        message = await comm.receive_json_from(timeout=remaining)
        messages.append(message)
        if done(message):
            return messages


def is_status(job_id, status):
    return lambda m: m["type"] == "status" and m["job"] == job_id and m["status"] == status


def stored_log(job_id) -> tuple[list[int], str]:
    chunks = list(LogChunk.objects.filter(job_id=job_id).order_by("seq").values_list("seq", "text"))
    return [seq for seq, _ in chunks], "".join(text for _, text in chunks)


async def start_printer(start_worker, api, project, user) -> int:
    await db(start_worker, "local")
    routine = await db(make_routine, project, user, PRINTER, name="printer")
    return await db(run, api, user, routine)


async def test_anonymous_socket_is_closed_with_4401(live):
    comm = await live(None)
    assert await comm.receive_output(timeout=REPLY) == {"type": "websocket.close", "code": 4401}


async def test_malformed_requests_get_an_error_and_the_socket_stays_open(live, sessions):
    comm = await live(sessions["alice"])
    await comm.send_to(text_data="not json")
    assert (await comm.receive_json_from(timeout=REPLY))["type"] == "error"
    await comm.send_json_to({"action": "dance", "job": 1})
    assert (await comm.receive_json_from(timeout=REPLY))["type"] == "error"
    await comm.send_json_to({"action": "subscribe", "job": 1, "after_seq": -1})
    assert await comm.receive_json_from(timeout=REPLY) == {
        "type": "error",
        "job": 1,
        "detail": "after_seq must be a non-negative integer.",
    }


async def test_a_stranger_gets_not_found_and_nothing_of_a_running_job(
    start_worker, api, project, alice, sessions, live
):
    charlie, bob = await live(sessions["charlie"]), await live(sessions["bob"])
    job_id = await start_printer(start_worker, api, project, alice)
    missing = job_id + 1000
    assert not await db(Job.objects.filter(pk=missing).exists)

    await charlie.send_json_to({"action": "subscribe", "job": job_id})
    assert await charlie.receive_json_from(timeout=REPLY) == {"type": "error", "job": job_id, "detail": NOT_FOUND}
    await charlie.send_json_to({"action": "subscribe", "job": missing})
    assert await charlie.receive_json_from(timeout=REPLY) == {"type": "error", "job": missing, "detail": NOT_FOUND}
    await charlie.send_json_to({"action": "subscribe", "run": job_id})
    assert await charlie.receive_json_from(timeout=REPLY) == {"type": "error", "run": job_id, "detail": NOT_FOUND}

    # bob, a member, watches the same job: proof that it printed and moved while charlie heard nothing
    await bob.send_json_to({"action": "subscribe", "job": job_id})
    seen = await receive_until(bob, lambda m: m["type"] == "log" and "line 1" in m["text"])
    assert (await db(Job.objects.get, pk=job_id)).status == "RUNNING"
    await charlie.send_json_to({"action": "subscribe", "job": job_id, "after_seq": 0})  # again, while it runs
    assert await charlie.receive_json_from(timeout=REPLY) == {"type": "error", "job": job_id, "detail": NOT_FOUND}
    seen += await receive_until(bob, is_status(job_id, "SUCCEEDED"))
    assert sum(m["text"].count("line ") for m in seen if m["type"] == "log") == 8
    assert await charlie.receive_nothing(timeout=1)


async def test_a_member_sees_lines_while_the_job_runs_then_its_end(start_worker, api, project, alice, sessions, live):
    bob = await live(sessions["bob"])
    job_id = await start_printer(start_worker, api, project, alice)
    await bob.send_json_to({"action": "subscribe", "job": job_id})
    subscribed = await bob.receive_json_from(timeout=REPLY)
    assert subscribed["type"] == "subscribed" and subscribed["job"] == job_id
    assert subscribed["status"] in {"QUEUED", "MAPPING_INPUTS", "RUNNING"}

    lines = lambda messages: sum(m["text"].count("line ") for m in messages if m["type"] == "log")  # noqa: E731
    messages = await receive_until(bob, lambda m: m["type"] == "log" and "line 3" in m["text"])
    assert lines(messages) >= 3
    assert (await db(Job.objects.get, pk=job_id)).status == "RUNNING", "three lines must arrive while it runs"

    messages += await receive_until(bob, is_status(job_id, "SUCCEEDED"))
    statuses = [m for m in messages if m["type"] == "status"]
    told = [subscribed["status"], *(m["status"] for m in statuses)]
    assert told == NODE_MOVES[NODE_MOVES.index(told[0]) :], "every later move, each once and in order"
    assert all(m["run"] is None and m["node"] == "" and "reason" in m for m in statuses)
    logs = [m for m in messages if m["type"] == "log"]
    seqs, text = await db(stored_log, job_id)
    assert [m["seq"] for m in logs] == seqs, "every chunk once, in order"
    assert "".join(m["text"] for m in logs) == text
    assert lines(logs) == 8


async def test_reconnecting_with_after_seq_resumes_without_repeats_or_gaps(
    start_worker, api, project, alice, sessions, live
):
    first = await live(sessions["alice"])
    job_id = await start_printer(start_worker, api, project, alice)
    await first.send_json_to({"action": "subscribe", "job": job_id, "after_seq": 0})
    before = await receive_until(first, lambda m: m["type"] == "log" and "line 3" in m["text"])
    await first.disconnect()
    before = [m for m in before if m["type"] == "log"]
    last = before[-1]["seq"]
    await asyncio.sleep(1)  # the job prints on while nobody listens

    second = await live(sessions["alice"])
    await second.send_json_to({"action": "subscribe", "job": job_id, "after_seq": last})
    # subscribing again on the same socket, even from 0, never repeats a seq
    await second.send_json_to({"action": "subscribe", "job": job_id, "after_seq": 0})
    after = await receive_until(second, is_status(job_id, "SUCCEEDED"))
    assert [m["type"] for m in after].count("subscribed") == 2
    after = [m for m in after if m["type"] == "log"]
    assert after[0]["seq"] == last + 1

    seqs, text = await db(stored_log, job_id)
    got = [m["seq"] for m in before + after]
    assert got == seqs == list(range(1, len(seqs) + 1)), "no repeats, no gaps"
    assert "".join(m["text"] for m in before + after) == text
    assert all(f"line {i}\n" in text for i in range(1, 9))

    await second.send_json_to({"action": "unsubscribe", "job": job_id})
    await second.send_json_to({"action": "subscribe", "job": job_id, "after_seq": 0})
    assert await second.receive_json_from(timeout=REPLY) == {"type": "subscribed", "job": job_id, "status": "SUCCEEDED"}
    assert await second.receive_nothing(timeout=0.5), "what this socket carried already is not sent again"


async def test_a_run_subscription_hears_every_node_move(start_worker, api, project, alice, sessions, live):
    await db(start_worker, "local", concurrency=2)
    watcher, charlie = await live(sessions["bob"]), await live(sessions["charlie"])
    flow = holder("live flow", [task("one", "echo one; sleep 1", callback=task("two", "echo two"))])
    root_id = await db(lambda: api(alice).post(DISPATCH_URL, flow, format="json").json()["job_id"])

    await watcher.send_json_to({"action": "subscribe", "run": root_id})
    subscribed = await watcher.receive_json_from(timeout=REPLY)
    assert subscribed["type"] == "subscribed" and subscribed["run"] == root_id
    assert subscribed["status"] in {"QUEUED", "RUNNING"}
    nodes = {n["node"]: n for n in subscribed["nodes"]}
    assert set(nodes) == {"one", "two"}
    assert all(set(n) == {"id", "node", "status", "reused_from"} and n["reused_from"] is None for n in nodes.values())
    assert nodes["two"]["status"] == "PENDING"

    messages = await receive_until(watcher, is_status(root_id, "SUCCEEDED"), timeout=60)
    assert all(m["type"] == "status" and m["run"] == root_id for m in messages)
    by_node: dict[str, list[str]] = {}
    for m in messages:
        by_node.setdefault(m["node"], []).append(m["status"])
        if m["node"]:
            assert m["job"] == nodes[m["node"]]["id"]
    # each node: its status when subscribed, then every later move, each once and in order
    for key in ("one", "two"):
        told = [nodes[key]["status"], *by_node[key]]
        assert told == NODE_MOVES[NODE_MOVES.index(told[0]) :], key
    told = [subscribed["status"], *by_node[""]]  # the root's own moves come with node ""
    assert told == ["QUEUED", "RUNNING", "MAPPING_OUTPUTS", "SUCCEEDED"][-len(told) :]

    await charlie.send_json_to({"action": "subscribe", "run": root_id})
    assert await charlie.receive_json_from(timeout=REPLY) == {"type": "error", "run": root_id, "detail": NOT_FOUND}
    node_id = nodes["one"]["id"]
    await watcher.send_json_to({"action": "subscribe", "run": node_id})  # a node is not a run
    assert await watcher.receive_json_from(timeout=REPLY) == {"type": "error", "run": node_id, "detail": NOT_FOUND}
    await watcher.send_json_to({"action": "unsubscribe", "run": root_id})
    assert await watcher.receive_nothing(timeout=0.5)
    await db(wait_for_status, root_id, "SUCCEEDED")


async def test_a_socket_stays_open_through_a_long_silence_and_hears_the_next_line(
    start_worker, api, project, alice, sessions, live
):
    """The channel layer's Redis connection must outlast quiet spells (redis-py's 5 s default read timeout)."""
    await db(start_worker, "local")
    routine = await db(make_routine, project, alice, "echo before; sleep 20; echo after", name="quiet")
    job_id = await db(run, api, alice, routine)
    comm = await live(sessions["alice"])
    await comm.send_json_to({"action": "subscribe", "job": job_id})
    await receive_until(comm, lambda m: m["type"] == "log" and "before" in m["text"], timeout=60)
    # twenty silent seconds: the socket must not be closed meanwhile, and the next line must reach it
    messages = await receive_until(comm, lambda m: m["type"] == "log" and "after" in m["text"], timeout=60)
    assert not [m for m in messages if m.get("type") == "websocket.close"]
    assert (await db(Job.objects.get, pk=job_id)).status in {"RUNNING", "MAPPING_OUTPUTS", "SUCCEEDED"}
