"""Failures the `acc` command reports as one line.

Everything the client can explain to a user derives from AccError, so the
CLI prints its message and exits 1 instead of showing a traceback.
"""

from __future__ import annotations


class AccError(Exception):
    """A failure with a message a user can act on."""


class NotLoggedIn(AccError):
    pass


class SessionExpired(AccError):
    pass


class ApiError(AccError):
    """The server answered with an error status; `detail` is its explanation."""

    def __init__(self, status: int, method: str, path: str, detail: str):
        self.status = status
        self.detail = detail
        super().__init__(f"{detail} (HTTP {status} from {method} {path})")
