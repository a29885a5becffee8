"""WebSocket traffic through the proxy to an interactive job on the Docker backend (TCP)."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import wait_for_status
from tests.interactive.conftest import cookies_for, echo_routine, end_now, run, session_url

pytestmark = pytest.mark.docker


def ws_connect(web, url: str, user, **kwargs):
    cookie = "; ".join(f"{k}={v}" for k, v in cookies_for(user).items())
    return connect(
        "ws" + url[len("http") :],
        origin=web.sessions,
        additional_headers={"Cookie": cookie},
        open_timeout=10,
        proxy=None,
        **kwargs,
    )


def test_websocket_echoes_through_the_proxy_for_the_owner_only(interactive_worker, web, api, project, alice, charlie):
    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, timeout=60))
    url = session_url(job_id)

    with ws_connect(web, url + "ws/echo", alice, subprotocols=["echo.v1"]) as ws:
        assert ws.subprotocol == "echo.v1", "the server's choice of subprotocol reaches the browser"
        for text in ("hello", "ünïcode ✓", "x" * 70_000):
            ws.send(text)
            assert ws.recv(timeout=10) == text
        ws.send(b"\x00\x01binary\xff")
        assert ws.recv(timeout=10) == b"\x00\x01binary\xff"

    with pytest.raises(InvalidStatus) as refused:
        with ws_connect(web, url + "ws/echo", charlie):
            pass
    assert refused.value.response.status_code == 403, "a stranger's handshake is refused before any upgrade"

    api(alice).post(f"/api/v1/jobs/{job_id}/cancel/")
    wait_for_status(job_id, "CANCELLED", timeout=30)


def test_websocket_closes_when_the_session_ends(interactive_worker, web, api, project, alice):
    interactive_worker("docker")
    job_id = run(api, alice, echo_routine(project, alice, timeout=120))
    url = session_url(job_id)
    with ws_connect(web, url + "ws", alice) as ws:
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"
        end_now(job_id)  # rather than a short timeout, which a loaded machine may spend before the server is up
        wait_for_status(job_id, {"SUCCEEDED", "TIMED_OUT"}, timeout=30)
        with pytest.raises(Exception):  # noqa: B017 - closed by the server's end, whichever way it is told
            ws.recv(timeout=10)
