"""Pure rules, with plain asserts: the interactive_socket syntax, what a container gets, what the proxy
forwards and what it keeps from the session's server."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import manifests
from backends.base import JobSpec
from backends.sockets import Socket, accepts, parse_socket, split_address, tcp_address
from interactive.proxy_rules import forward_headers, response_headers, split_path, under_prefix


def test_tcp_and_unix_sockets_parse():
    assert parse_socket("0.0.0.0:8787") == Socket("tcp", host="0.0.0.0", port=8787)
    assert parse_socket(":8888") == Socket("tcp", host="", port=8888)
    assert parse_socket("[::]:9000") == Socket("tcp", host="::", port=9000)
    assert parse_socket("127.0.0.1:80").loopback_only
    sock = parse_socket("unix:///tmp/service.sock")
    assert (sock.kind, sock.path, sock.folder, sock.name) == ("unix", "/tmp/service.sock", "/tmp", "service.sock")
    assert parse_socket("unix:///run/app/s.sock").folder == "/run/app"


@pytest.mark.parametrize(
    "value", ["", "8787", "host:80", "0.0.0.0:0", "0.0.0.0:http", "ws://x:1", "unix://x.sock", "unix:///etc/x.sock"]
)
def test_bad_sockets_are_refused_with_a_sentence(value):
    with pytest.raises(ValueError, match="interactive_socket"):
        parse_socket(value)


def test_addresses_round_trip():
    assert split_address(tcp_address("10.1.2.3", 8787)) == ("tcp", "10.1.2.3", 8787)
    assert split_address(tcp_address("fd00::2", 80)) == ("tcp", "fd00::2", 80)
    assert split_address("unix:///var/acc/sockets/int-1/s.sock") == ("unix", "/var/acc/sockets/int-1/s.sock", 0)
    assert not accepts("tcp://127.0.0.1:1", timeout=0.2)


def spec(**fields) -> JobSpec:
    return JobSpec(job_id=7, command="serve", workdir="/code", host_dir=Path("/j"), root_dir=Path("/j/root"), **fields)


def test_a_tcp_session_joins_its_own_network_and_a_unix_one_gets_only_its_socket_folder():
    base = manifests.container_kwargs(spec(image="img", pipe="acc-pipe-job-7"))
    assert manifests.interactive_network_name("int", 7) == "acc-int-int-7"
    assert manifests.interactive_network_name("a b/c", 7) == "acc-int-a-b-c-7"
    tcp = manifests.interactive_kwargs(base, parse_socket("0.0.0.0:8787"), network="acc-int-int-7", host_dir="/s")
    assert tcp["network_mode"] == "acc-int-int-7" and tcp["mounts"] == base["mounts"]
    unix = manifests.interactive_kwargs(base, parse_socket("unix:///tmp/s.sock"), network="", host_dir="/s/int-7")
    assert unix["network_mode"] == "none", "a Unix socket needs no network"
    assert unix["mounts"][-1] == {"Type": "bind", "Source": "/s/int-7", "Target": "/tmp", "ReadOnly": False}
    assert unix["privileged"] is False and unix["security_opt"] == ["no-new-privileges"]
    net = manifests.interactive_network_kwargs("acc-int-int-7", job_id=7, labels={"acc.instance": "int"})
    assert net["internal"] is True and net["labels"]["acc.job"] == "7"


def scope(headers: dict[str, str], **extra) -> dict:
    return {
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("10.0.0.9", 5000),
        "scheme": "https",
        **extra,
    }


def test_platform_credentials_and_hop_by_hop_headers_never_reach_the_server():
    forwarded = dict(
        (k.decode(), v.decode())
        for k, v in forward_headers(
            scope(
                {
                    "host": "acc.example.org",
                    "cookie": "sessionid=s3cret; app=1; csrftoken=t0k; _xsrf=x",
                    "authorization": "Bearer platform-token",
                    "x-authorization": "platform-token",
                    "x-link-token": "link",
                    "connection": "keep-alive, x-private",
                    "x-private": "hop",
                    "x-forwarded-for": "1.2.3.4",
                    "accept": "text/html",
                }
            ),
            prefix="/interactive/abc/",
        )
    )
    assert forwarded["cookie"] == "app=1; _xsrf=x"
    assert forwarded["host"] == "acc.example.org" and forwarded["accept"] == "text/html"
    assert forwarded["x-forwarded-for"] == "1.2.3.4, 10.0.0.9" and forwarded["x-forwarded-proto"] == "https"
    assert forwarded["x-forwarded-prefix"] == "/interactive/abc"
    for gone in ("authorization", "x-authorization", "x-link-token", "connection", "x-private"):
        assert gone not in forwarded
    basic = forward_headers(scope({"authorization": "Basic dXNlcjpwdw=="}), prefix="/interactive/abc/")
    assert (b"authorization", b"Basic dXNlcjpwdw==") in basic, "the app's own auth scheme passes"


def test_the_server_may_not_set_platform_cookies_and_its_redirects_stay_under_the_prefix():
    headers = [
        (b"set-cookie", b"sessionid=evil; Path=/"),
        (b"set-cookie", b"app=1; Path=/"),
        (b"location", b"/lab?x=1"),
        (b"transfer-encoding", b"chunked"),
        (b"content-type", b"text/html"),
    ]
    out = response_headers(headers, prefix="/interactive/abc/", strip=True)
    assert (b"set-cookie", b"app=1; Path=/") in out and (b"set-cookie", b"sessionid=evil; Path=/") not in out
    assert (b"location", b"/interactive/abc/lab?x=1") in out and all(k != b"transfer-encoding" for k, _ in out)
    kept = response_headers([(b"location", b"/lab")], prefix="/interactive/abc/", strip=False)
    assert kept == [(b"location", b"/lab")], "a server that sees the prefix writes its own redirects"
    assert under_prefix("https://elsewhere.org/x", "/interactive/abc/") == "https://elsewhere.org/x"
    assert under_prefix("/interactive/abc/x", "/interactive/abc/") == "/interactive/abc/x"


def test_paths_split_into_token_and_rest():
    token = "A" * 32
    assert split_path(f"/interactive/{token}/lab/tree") == (token, "/lab/tree")
    assert split_path(f"/interactive/{token}") == (token, "")
    assert split_path("/interactive/short/x") is None
    assert split_path("/interactive/" + "a" * 20 + "!/") is None
