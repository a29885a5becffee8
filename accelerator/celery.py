import os

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "accelerator.settings")

app = Celery("accelerator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def _fit_connection_pool(conf=None, options=None, **kwargs) -> None:
    """A thread-pool worker's tasks and their log writers each hold a database connection for a moment:
    unless DB_POOL_MAX says otherwise, the worker's pool fits twice its concurrency."""
    if "DB_POOL_MAX" in os.environ or not options:
        return
    from django.db import connections

    pool = connections.databases["default"].get("OPTIONS", {}).get("pool")
    concurrency = options.get("concurrency") or 0
    if isinstance(pool, dict) and concurrency:
        pool["max_size"] = max(pool["max_size"], 2 * int(concurrency) + 2)
