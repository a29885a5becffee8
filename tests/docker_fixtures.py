"""Fixtures for tests against the real Docker engine that `scripts/services.sh` starts.

An unreachable engine or a missing test image fails the test with the command
that fixes it; it is never a skip, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest

DEFAULT_DOCKER_HOST = "unix:///run/acc-docker.sock"  # where scripts/services.sh starts the engine
TEST_IMAGES = ("acc-test/busybox:latest", "acc-test/python:latest")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client for DOCKER_HOST (default: the engine services.sh starts); fails when it cannot be used."""
    os.environ.setdefault("DOCKER_HOST", DEFAULT_DOCKER_HOST)  # the backend under test reads the same variable
    host = os.environ["DOCKER_HOST"]
    try:
        client = docker.from_env()
        client.ping()
        problem = None
    except Exception as exc:
        problem = str(exc)
    if problem is not None:  # failed outside the except block: the report shows the message, not a chain
        pytest.fail(
            f"The Docker engine at DOCKER_HOST={host} is unreachable: {problem}\n"
            "Start it with `bash scripts/services.sh` (as root) and set DOCKER_HOST=unix:///run/acc-docker.sock.",
            pytrace=False,
        )
    missing = [tag for tag in TEST_IMAGES if not client.images.list(name=tag)]
    if missing:
        pytest.fail(
            f"Test images {', '.join(missing)} are missing on {host}: run `bash scripts/services.sh`.", pytrace=False
        )
    yield client
    client.close()


@pytest.fixture
def docker_backend(docker_client):
    """A DockerBackend on the test engine, with the platform's settings and a short pull timeout."""
    from backends.docker import DockerBackend

    return DockerBackend(pull_timeout=5)
