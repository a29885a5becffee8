"""Production-like defaults: no well-known secret key, no demo administrator outside a laptop.

Settings are read in fresh interpreters, as `make run` starts its processes, so each case sees exactly the
environment it names.
"""

import json
import os
import stat
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings

from tests.conftest import ROOT

READ = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'key': s.SECRET_KEY, 'demo': s.ACC_DEMO, 'admin': s.ACC_DEMO_ADMIN}))"
)
DROPPED = ("SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "ACC_DEMO", "HOST")


def settings_with(data_dir, **env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in DROPPED}
    base.update(ACC_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="accelerator.settings", **env)
    out = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_without_secret_key_a_random_key_is_made_once_and_kept_private(tmp_path):
    first = settings_with(tmp_path / "a")
    assert "dev-only" not in first["key"] and len(first["key"]) >= 50
    key_file = tmp_path / "a" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings_with(tmp_path / "a")["key"] == first["key"], "the same key on every later start"
    assert settings_with(tmp_path / "b")["key"] != first["key"], "each installation its own key"


def test_a_given_secret_key_is_used_and_nothing_is_written(tmp_path):
    assert settings_with(tmp_path, SECRET_KEY="from-the-operator")["key"] == "from-the-operator"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    "env, demo, admin",
    [
        ({}, True, True),  # make run on a laptop: embedded SQLite on loopback
        ({"HOST": "0.0.0.0"}, True, False),  # reachable from elsewhere: demo data, but no admin
        ({"DATABASE_URL": "postgres://u@127.0.0.1:5432/x"}, False, False),  # a deployment: no demo at all
        ({"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "ACC_DEMO": "true"}, True, False),
    ],
)
def test_the_demo_and_its_administrator_depend_on_where_the_platform_runs(tmp_path, env, demo, admin):
    got = settings_with(tmp_path, **env)
    assert (got["demo"], got["admin"]) == (demo, admin)


@pytest.mark.django_db
@override_settings(ACC_DEMO=False, ACC_DEMO_ADMIN=False)
def test_make_run_loads_no_demo_user_when_the_demo_is_off():
    call_command("load_demo", "--if-enabled", verbosity=0)
    assert not get_user_model().objects.filter(username="demo").exists()


@pytest.mark.django_db
def test_the_demo_user_is_no_administrator_outside_a_laptop_and_loses_it_if_it_had_it():
    with override_settings(ACC_DEMO=True, ACC_DEMO_ADMIN=True):
        call_command("load_demo", "--if-enabled", verbosity=0)
    demo = get_user_model().objects.get(username="demo")
    assert demo.is_superuser and demo.is_staff
    with override_settings(ACC_DEMO=True, ACC_DEMO_ADMIN=False):
        call_command("load_demo", "--if-enabled", verbosity=0)
    demo.refresh_from_db()
    assert not demo.is_superuser and not demo.is_staff
    assert demo.check_password("demo-password")
