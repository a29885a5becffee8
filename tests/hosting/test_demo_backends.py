"""The demo offers only what runs where it runs: JupyterLab needs its image, so not on the local backend; and a
routine page on the local backend says before the click that an image is not used there."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from routines.models import Routine

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def demo_routines() -> set[str]:
    return set(Routine.objects.filter(project__slug="demo").values_list("name", flat=True))


def test_on_the_local_backend_the_demo_leaves_out_jupyterlab_and_says_so(settings, capsys):
    settings.ACC_BACKEND = "local"
    call_command("load_demo")
    assert "jupyterlab" not in demo_routines() and {"hello", "web-app", "square"} <= demo_routines()
    assert "not offered on the local backend: jupyterlab (needs the docker or kubernetes backend)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("backend", ["docker", "kubernetes"])
def test_on_an_image_backend_the_demo_offers_jupyterlab(settings, backend):
    settings.ACC_BACKEND = backend
    call_command("load_demo", verbosity=0)
    lab = Routine.objects.get(project__slug="demo", name="jupyterlab").latest_version.spec
    assert lab["conf"] == {"interactive_socket": "0.0.0.0:8888", "interactive_prefix": "keep"}
    assert "$ACC_INTERACTIVE_PREFIX" in lab["command"]


def test_a_routine_page_on_the_local_backend_says_the_image_is_not_used(settings):
    settings.ACC_BACKEND = "docker"
    call_command("load_demo", verbosity=0)  # loaded earlier on docker, served now on local
    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    lab = Routine.objects.get(project__slug="demo", name="jupyterlab")
    settings.ACC_BACKEND = "local"
    text = client.get(f"/routines/{lab.pk}/").content.decode()
    note = text.split('id="stack-note">')[1].split("</p>")[0]
    assert "local backend" in note and "image is not used" in note and "jupyter" in note
    settings.ACC_BACKEND = "docker"
    assert 'id="stack-note"' not in client.get(f"/routines/{lab.pk}/").content.decode()
