"""Parse the `input_mappings` / `output_mappings` conf values (pure, no Django).

Both are `;`-separated `source:destination` pairs. An input pair copies
project storage into the container (`acc://demo/xyz/:/code/input/`), an
output pair copies a container path back (`/code/out/:acc://out`). Because
`acc://` itself holds a colon, an input pair is split at the first ':' after
its `acc://` prefix and an output pair at its first ':'. A trailing '/' on
either side means "folder"; it is kept so the runner can tell.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

ACC_PREFIX = "acc://"
INPUT_SYNTAX = "acc://<path>:/container/path[;acc://<path>:/container/path...], e.g. acc://demo/xyz/:/code/input/"
OUTPUT_SYNTAX = "/container/path:acc://<path>[;/container/path:acc://<path>...], e.g. /code/out/:acc://out"


class MappingError(ValueError):
    """A mapping string a user wrote is malformed; the message says how to fix it."""


@dataclass(frozen=True)
class Mapping:
    """One pair. `direction` is "input" or "output"; sources and destinations keep a trailing '/'."""

    source: str
    destination: str
    direction: str

    @property
    def acc_url(self) -> str:
        return self.source if self.direction == "input" else self.destination

    @property
    def container_path(self) -> str:
        return self.destination if self.direction == "input" else self.source

    @property
    def is_folder(self) -> bool:
        """True when either side ends with '/': the pair names a folder."""
        return self.source.endswith("/") or self.destination.endswith("/")


def parse_input_mappings(value: str) -> list[Mapping]:
    """`acc://<path>:/container/path;...` -> mappings that copy project files into the container."""
    return [_parse_input_pair(pair) for pair in _pairs(value, "input_mappings", INPUT_SYNTAX)]


def parse_output_mappings(value: str) -> list[Mapping]:
    """`/container/path:acc://<path>;...` -> mappings that store container files in the project."""
    return [_parse_output_pair(pair) for pair in _pairs(value, "output_mappings", OUTPUT_SYNTAX)]


def _pairs(value: str, key: str, syntax: str) -> list[str]:
    if not isinstance(value, str):
        raise MappingError(f"{key} must be a string in the form {syntax}.")
    return [part.strip() for part in value.split(";") if part.strip()]


def _parse_input_pair(pair: str) -> Mapping:
    if not pair.startswith(ACC_PREFIX):
        raise MappingError(f"Input mapping {pair!r} must start with {ACC_PREFIX}. Expected {INPUT_SYNTAX}.")
    cut = pair.find(":", len(ACC_PREFIX))
    if cut < 0:
        raise MappingError(f"Input mapping {pair!r} has no ':' before the container path. Expected {INPUT_SYNTAX}.")
    source, destination = pair[:cut].strip(), pair[cut + 1 :].strip()
    _check_acc_url(source, pair, INPUT_SYNTAX)
    destination = _container_path(destination, pair, INPUT_SYNTAX)
    return Mapping(source=source, destination=destination, direction="input")


def _parse_output_pair(pair: str) -> Mapping:
    source, sep, destination = pair.partition(":")
    if not sep:
        raise MappingError(f"Output mapping {pair!r} has no ':' between the two sides. Expected {OUTPUT_SYNTAX}.")
    source, destination = source.strip(), destination.strip()
    if not destination.startswith(ACC_PREFIX):
        raise MappingError(
            f"Output mapping {pair!r} must store into project storage ({ACC_PREFIX}<path>). Expected {OUTPUT_SYNTAX}."
        )
    _check_acc_url(destination, pair, OUTPUT_SYNTAX)
    source = _container_path(source, pair, OUTPUT_SYNTAX)
    return Mapping(source=source, destination=destination, direction="output")


def _check_acc_url(url: str, pair: str, syntax: str) -> None:
    path = url[len(ACC_PREFIX) :]
    if "\x00" in path:
        raise MappingError(f"Mapping {pair!r}: {url!r} contains a NUL byte. Expected {syntax}.")
    if ".." in path.split("/"):
        raise MappingError(f"Mapping {pair!r}: {url!r} must not contain '..'. Expected {syntax}.")
    if path.startswith("/"):
        raise MappingError(f"Mapping {pair!r}: write {ACC_PREFIX}<path> without a slash after '//'. Expected {syntax}.")


def _container_path(path: str, pair: str, syntax: str) -> str:
    """Check and normalise an absolute container path, keeping a trailing '/' (folder)."""
    if not path:
        raise MappingError(f"Mapping {pair!r} has an empty container path. Expected {syntax}.")
    if "\x00" in path:
        raise MappingError(f"Mapping {pair!r}: the container path contains a NUL byte. Expected {syntax}.")
    if not path.startswith("/"):
        raise MappingError(f"Mapping {pair!r}: container path {path!r} must be absolute. Expected {syntax}.")
    if ".." in path.split("/"):
        raise MappingError(f"Mapping {pair!r}: container path {path!r} must not contain '..'. Expected {syntax}.")
    normal = "/" + posixpath.normpath(path).lstrip("/")
    if normal == "/":
        raise MappingError(f"Mapping {pair!r}: map a folder below '/', not the container root. Expected {syntax}.")
    return normal + "/" if path.endswith("/") else normal
