"""What our two uvicorn servers (`serve_web`, `serve_proxy`) share: their options and how uvicorn is run.

uvloop and httptools for speed, the sans-I/O websockets implementation,
no lifespan (Django has none), no Server header, and 5 s on TERM for open
websockets and streams before they are closed.
"""

from __future__ import annotations

import uvicorn


def add_server_arguments(parser, *, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"port to listen on (default {port})")
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="front proxies whose X-Forwarded-For/-Proto are believed (default 127.0.0.1)",
    )


def run(app, *, host: str, port: int, forwarded_allow_ips: str, **overrides) -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="off",
        server_header=False,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=5,
        **overrides,
    )
