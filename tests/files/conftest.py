"""Every files test gets its own storage root, so tests never see each other's files."""

import pytest
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):
    root = tmp_path / "storage"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


@pytest.fixture
def api_anonymous_put():
    """put(url, data) -> response: a PUT with no credentials and no content type, as accli uploads."""

    def put(url: str, data: bytes):
        return APIClient().generic("PUT", url, data, content_type="")

    return put
