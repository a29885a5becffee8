"""`manage.py serve_proxy`: the interactive-session proxy in a process of its own.

The platform (daphne) mounts the same proxy under /interactive/, which is
enough for a single-origin deployment. Sessions are faster and safer on
their own server: uvicorn on uvloop with httptools spends a fraction of
daphne's time per request (a session's page loads dozens of files), a busy
notebook never slows the platform's pages and live logs, and pages served
from another origin (a port or host of their own) cannot script the
platform's. Point ACC_INTERACTIVE_BASE_URL (or the session hosts of
ACC_INTERACTIVE_HOST) at it; `make run` does, on PORT + 1.
"""

from __future__ import annotations

import uvicorn
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve interactive sessions (the /interactive/ proxy, HTTP and WebSocket) with uvicorn."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8001, help="port to listen on (default 8001)")
        parser.add_argument(
            "--forwarded-allow-ips",
            default="127.0.0.1",
            help="front proxies whose X-Forwarded-For/-Proto are believed (default 127.0.0.1)",
        )

    def handle(self, *args, host: str, port: int, forwarded_allow_ips: str, **options):
        from workers.proxy import proxy_application

        uvicorn.run(
            proxy_application(),
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            ws="websockets-sansio",
            lifespan="off",
            access_log=False,
            server_header=False,  # the session's server names itself; the proxy adds nothing
            date_header=False,
            forwarded_allow_ips=forwarded_allow_ips,
            timeout_graceful_shutdown=5,  # open websockets and streams get 5 s on TERM, then are closed
            log_level="warning",
        )
