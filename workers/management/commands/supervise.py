"""`manage.py supervise`: the supervisor of a backend's running jobs (see workers.supervisor).

One per backend and host is enough for hundreds of jobs; `make run` and
docker-compose.yml start it beside the worker. It may be stopped and
started at any time: running jobs keep running, and it adopts them again.
"""

from __future__ import annotations

import asyncio
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Follow every running job of a backend by the engine's events (logs, limits, cancel, sessions)."

    def add_arguments(self, parser):
        parser.add_argument("--backend", default=None, help="The backend to supervise (default: ACC_BACKEND).")

    def handle(self, *args, backend: str | None = None, **options):
        from backends import get_backend
        from workers.supervisor import Supervisor

        supervisor = Supervisor(get_backend(backend))
        name = supervisor.backend.name

        def ready() -> None:
            print(f"supervisor ready: backend {name}", flush=True)

        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
            runner = asyncio.run
        runner(supervisor.run(on_ready=ready))
        sys.stdout.flush()
