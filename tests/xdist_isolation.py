"""Each pytest-xdist worker (`scripts/test.sh` runs ACC_TEST_WORKERS of them) is a platform of its own.

The workers share one PostgreSQL, one Redis and one Docker engine, as two deployments on one machine would, and
must not see each other's jobs:

- PostgreSQL: pytest-django already gives each worker a test database of its own (test_<name>_gw<N>).
- Redis: the database index of REDIS_URL plus N. The Celery broker, the channel layer and the cache live there;
  on a shared index a Celery worker started by a test would take the jobs of another xdist worker's tests,
  whose database it cannot see.
- ACC_INSTANCE-gw<N>: labels the worker's containers (the reconciler of one leaves the other's alone) and names
  its session sockets, session networks and cgroups.
- ACC_DATA_DIR/gw<N>: job folders, storage, static files, server and Celery logs.
- Job ids: containers are named acc-job-<id> on the one engine, so each worker numbers its jobs from a block of
  its own (the django_db_setup fixture below).

The variables are set in the worker process before it reads Django's settings (through execnet's `env:`), so
every Celery worker and web server its tests start inherits them.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_DATABASES = 16  # Redis's default `databases`
JOB_ID_BLOCK = 100_000_000  # ids per worker; bench/harness.py's start (1e9) stays above 9 workers' blocks


def pytest_xdist_setupnodes(config, specs) -> None:
    """Called on the controller before the workers start: give each its environment."""
    from django.conf import settings  # pytest-django has set Django up on the controller too

    redis = urlsplit(settings.REDIS_URL)
    base_db = int(redis.path.strip("/") or 0)
    if base_db + len(specs) > REDIS_DATABASES:
        raise pytest.UsageError(
            f"{len(specs)} workers need Redis databases {base_db}..{base_db + len(specs) - 1} of REDIS_URL "
            f"({settings.REDIS_URL}), Redis has 0..{REDIS_DATABASES - 1}: use a lower index or fewer workers"
        )
    for index, spec in enumerate(specs):
        spec.env.update(
            REDIS_URL=urlunsplit(redis._replace(path=f"/{base_db + index}")),
            ACC_INSTANCE=f"{settings.ACC_INSTANCE}-{spec.id}",
            ACC_DATA_DIR=str(settings.DATA_DIR / spec.id),
        )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database; in xdist worker gw<N> job ids start at (N + 1) * JOB_ID_BLOCK + 1."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # set by xdist in its workers
    if worker:
        from django.db import connection

        start = (int(worker.removeprefix("gw")) + 1) * JOB_ID_BLOCK + 1
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('workers_job', 'id'), %s, false)", [start])
