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

from django.core.management.base import BaseCommand

from accelerator import serving


class Command(BaseCommand):
    help = "Serve the platform (HTTP and WebSocket) with uvicorn."

    def add_arguments(self, parser):
        serving.add_server_arguments(parser, port=8000)

    def handle(self, *args, host: str, port: int, forwarded_allow_ips: str, **options):
        serving.run(
            "accelerator.asgi:application",
            host=host,
            port=port,
            forwarded_allow_ips=forwarded_allow_ips,
            log_level="info",
        )
