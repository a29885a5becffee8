"""`manage.py serve_web`: the platform (Django, DRF, Channels websockets, the /interactive/ mount) under uvicorn.

uvicorn hands a request's body to the application as it arrives and stops
reading the socket while the application asks for no more, which
accelerator/upload_guard.py needs: a refused upload is answered before its
body is sent, an accepted one streams to storage in bounded memory. (daphne,
served before, received every body whole before the application saw the
request.) `make run`, the compose file and the image start the platform
with this command.
"""

from __future__ import annotations

import uvicorn
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the platform (HTTP and WebSocket) with uvicorn."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        parser.add_argument(
            "--forwarded-allow-ips",
            default="127.0.0.1",
            help="front proxies whose X-Forwarded-For/-Proto are believed (default 127.0.0.1)",
        )

    def handle(self, *args, host: str, port: int, forwarded_allow_ips: str, **options):
        uvicorn.run(
            "accelerator.asgi:application",
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            ws="websockets-sansio",
            lifespan="off",  # Django has no lifespan events
            server_header=False,
            forwarded_allow_ips=forwarded_allow_ips,
            timeout_graceful_shutdown=5,  # open websockets (live logs) get 5 s on TERM, then are closed
            log_level="info",
        )
