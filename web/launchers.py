"""What the file explorer can launch on a selection besides the project's routines, and where a job came from.

An app above web (hosting: its hosted models) registers a `Launcher` when it
starts; web never imports it. The explorer's form names a launcher's choice
as `<prefix>:<name>`. It registers a job origin too: the job page asks it
what launched a job (a hosted model), to link back to it for the viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Launcher:
    prefix: str  # "hosted" in "hosted:<slug>"
    context_key: str  # the name under which the explorer's template lists the choices
    choices: Callable  # (user) -> what the user may launch, for the template
    target: Callable  # (user, project, name, paths) -> the URL that continues the launch; NotFound if refused


_launchers: dict[str, Launcher] = {}


def register(launcher: Launcher) -> None:
    _launchers[launcher.prefix] = launcher


def registered() -> list[Launcher]:
    return list(_launchers.values())


def find(value: str) -> tuple[Launcher, str] | None:
    """The launcher and the name in `<prefix>:<name>`; None for a routine id."""
    prefix, sep, name = value.partition(":")
    launcher = _launchers.get(prefix) if sep else None
    return (launcher, name) if launcher is not None else None


# --- where a job came from ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Origin:
    kind: str  # "hosted model"
    title: str
    url: str  # "" when the viewer may not open it (e.g. a link-only model whose token they no longer hold)


_origins: list[Callable] = []


def register_origin(origin: Callable) -> None:
    """`origin(user, job) -> Origin | None`: what launched `job`, as `user` may see it; None when not its own."""
    if origin not in _origins:
        _origins.append(origin)


def origin_of(user, job) -> Origin | None:
    for origin in _origins:
        found = origin(user, job)
        if found is not None:
            return found
    return None
