"""`manage.py serve_proxy`: the interactive-session proxy in a process of its own.

The platform (serve_web) mounts the same proxy under /interactive/, which is
enough for a single-origin deployment. Sessions are faster and safer on
their own server: uvicorn on uvloop with httptools spends a fraction of
daphne's time per request (a session's page loads dozens of files), a busy
notebook never slows the platform's pages and live logs, and pages served
from another origin (a port or host of their own) cannot script the
platform's. Point ACC_INTERACTIVE_BASE_URL (or the session hosts of
ACC_INTERACTIVE_HOST) at it; `make run` does, on PORT + 1.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accelerator import serving


class Command(BaseCommand):
    help = "Serve interactive sessions (the /interactive/ proxy, HTTP and WebSocket) with uvicorn."

    def add_arguments(self, parser):
        serving.add_server_arguments(parser, port=8001)

    def handle(self, *args, host: str, port: int, forwarded_allow_ips: str, **options):
        from interactive.proxy import proxy_application

        serving.run(
            proxy_application(),
            host=host,
            port=port,
            forwarded_allow_ips=forwarded_allow_ips,
            access_log=False,
            date_header=False,  # the session's server dates its own answers; the proxy adds nothing
            log_level="warning",
        )
