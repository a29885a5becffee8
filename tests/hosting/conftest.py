"""Hosting fixtures: alice (author, owner of `demo`), bob (member of `demo`), carol (signed in, outside it),
dave (signed in, outside it, holds a link when one is given), and hosted models of every policy."""

import io

import pytest

from files import services as files
from hosting import services as hosting
from routines import services as routines

SQUARE_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0, "title": "n"}},
    "required": ["n"],
}
# Prints n squared, copies its input, and writes a result file; reads /code/in/data.txt when given.
SQUARE_COMMAND = (
    'mkdir -p out; echo "square=$((n*n))" | tee out/result.txt; '
    'if [ -f in/data.txt ]; then cat in/data.txt >> out/result.txt; fi; echo "token-length=${#API_TOKEN}"'
)


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", "carol@example.org", "carol-pass-123")


@pytest.fixture
def dave(django_user_model):
    return django_user_model.objects.create_user("dave", "dave@example.org", "dave-pass-123")


def square_routine(project, user, name="square"):
    task = {
        "name": name,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": SQUARE_COMMAND, "conf": {}},
        "conf_schema": SQUARE_SCHEMA,
        "timeout": 120,
    }
    return routines.save_routine(project=project, user=user, task=task, description="Squares n.")


def publish(user, routine, *, slug="square", policy="public", **extra):
    data = {
        "slug": slug,
        "title": extra.pop("title", "Square a number"),
        "description": "Squares **n**.",
        "policy": policy,
        "routine": routine.pk,
        "inputs_schema": [{"name": "data", "kind": "file", "required": False, "target": "/code/in/data.txt"}],
        "secrets_schema": {"type": "object", "properties": {"API_TOKEN": {"type": "string"}}},
        "outputs": [{"path": "/code/out/", "name": "results"}],
        **extra,
    }
    return hosting.publish(user=user, project_slug=routine.project.slug, data=data)


def write(project, relpath, data: bytes):
    files.write_file(project=project, relpath=relpath, stream=io.BytesIO(data))


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Every test here creates several users and none signs in by password: hash cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
