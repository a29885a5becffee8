"""The production compose file is valid and the settings read their configuration from the environment."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "make test installs docker-compose (scripts/services.sh)"
    return ["docker-compose"]


def test_compose_file_is_accepted_and_runs_web_proxy_worker_supervisor_beat_postgres_redis():
    env = {**os.environ, "SECRET_KEY": "from-the-environment"}
    check = subprocess.run([*compose_command(), "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    services = subprocess.run(
        [*compose_command(), "config", "--services"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(services) == {"postgres", "redis", "web", "proxy", "worker", "supervisor", "beat"}


def test_compose_puts_sessions_where_the_proxy_and_the_worker_reach_them():
    env = {**os.environ, "SECRET_KEY": "from-the-environment"}
    config = yaml.safe_load(
        subprocess.run([*compose_command(), "config"], cwd=ROOT, env=env, capture_output=True, text=True).stdout
    )
    services, sessions = config["services"], config["networks"]["sessions"]
    assert sessions["internal"] is True, "servers inside sessions get no route out"
    for name in ("web", "proxy", "worker", "supervisor"):
        environment = services[name]["environment"]
        assert environment["ACC_INTERACTIVE_NETWORK"] == sessions["name"]
        assert "sessions" in services[name]["networks"], f"{name} cannot reach the sessions"
        folder = environment["ACC_INTERACTIVE_SOCKET_DIR"]
        mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in services[name]["volumes"]]
        assert any(m.startswith(f"{folder}:{folder}") for m in mounts), f"{name}: socket folder not at the host's path"
    command = services["proxy"]["command"]
    assert " ".join(command if isinstance(command, list) else [command]).startswith("python manage.py serve_proxy")
    assert services["proxy"]["environment"]["ACC_INTERACTIVE_BASE_URL"].endswith(":8001")


def test_compose_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    check = subprocess.run([*compose_command(), "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "SECRET_KEY" in check.stderr


def read_settings(**env) -> str:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='accelerator.settings'; "
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_BROKER_URL, "
        "s.ACC_BACKEND)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ACC_BACKEND")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_settings_have_embedded_defaults_and_follow_the_environment(tmp_path):
    default = read_settings(ACC_DATA_DIR=str(tmp_path))
    assert default == f"django.db.backends.sqlite3 {tmp_path / 'db.sqlite3'} redis://127.0.0.1:6379/0 local"
    configured = read_settings(
        DATABASE_URL="postgres://u@db:5432/acc", REDIS_URL="redis://cache:6379/2", ACC_BACKEND="docker"
    )
    assert configured == "django.db.backends.postgresql acc redis://cache:6379/2 docker"


def test_a_malformed_boolean_setting_stops_start_up_with_a_clear_message():
    env = {**os.environ, "DEBUG": "maybe"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "DEBUG='maybe' is not a boolean" in result.stderr
