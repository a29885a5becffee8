"""Page tests: each gets its own storage root; routines with and without a conf schema."""

import pytest

from routines import services

CONF_SCHEMA = {
    "type": "object",
    "properties": {
        "GREETING": {"type": "string", "enum": ["hello", "hi", "hey"], "default": "hello", "title": "Greeting"},
        "COUNT": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3, "title": "Count"},
        "WHO": {"type": "string", "minLength": 1, "title": "Who"},
        "TOKEN": {"type": "string", "format": "password", "title": "API token"},
    },
    "required": ["COUNT", "WHO"],
}


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):
    root = tmp_path / "storage"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


def make_routine(project, user, *, name="greet", schema=CONF_SCHEMA, command="echo hi", conf=None):
    task = {
        "name": name,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command, "conf": conf or {}},
        "timeout": 120,
    }
    if schema is not None:
        task["conf_schema"] = schema
    return services.save_routine(project=project, user=user, task=task, description=f"The {name} routine.")


@pytest.fixture
def routine(project, alice):
    return make_routine(project, alice, conf={"WHO": "world", "output_mappings": "/code/out/:acc://demo/out/"})


@pytest.fixture
def signed_in(client):
    """signed_in(user) -> a Django test client signed in as `user`."""

    def make(user):
        client.force_login(user)
        return client

    return make
