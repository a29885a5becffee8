"""Built images are single-flight: one worker builds a content tag, any other that needs it meanwhile waits.

A stack's tag hashes everything the image is built from, so two jobs that
need the same tag at once (parallel jobflow nodes sharing a Dockerfile) must
end up on one image: if both built it, the tag would end on the second image
while the first job recorded the other digest, and an identical dispatch
would miss the cache. The flight is a key in the shared Redis cache (so it
spans every worker of the deployment), set with NX and an expiry past the
build timeout, so a worker that dies mid-build does not block the tag for
longer than that.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.cache import cache

from backends.base import BuildCancelled

_POLL = 0.5


@contextmanager
def single_flight(
    tag: str, *, timeout: float, should_stop: Callable[[], bool], on_wait: Callable[[], None]
) -> Iterator[None]:
    """Hold the build of `tag` for the body; wait while another worker holds it (`on_wait` is called once).

    The body then builds, or finds the tag the other worker built. Raises
    BuildCancelled when `should_stop` says so while waiting.
    """
    key, token, waited = f"build-flight:{tag}", secrets.token_hex(8), False
    while not cache.add(key, token, timeout=int(timeout) + 60):
        if should_stop():
            raise BuildCancelled
        if not waited:
            on_wait()
            waited = True
        time.sleep(_POLL)
    try:
        yield
    finally:
        if cache.get(key) == token:  # not the next holder's, had ours expired
            cache.delete(key)
