"""`make run` end to end, on the embedded default (SQLite, filesystem broker, file outbox).

Runs the same steps as `make run` after the install (migrate, load_demo twice, then
scripts/run.sh) in a scratch folder, and checks through real processes:
- the login page is served and a demo nurse signs in through a real browser (screenshot);
- beat and a worker run a real task: the heartbeat reaches the SQLite database and /health/;
- the demo data is not duplicated by a second load;
- Ctrl-C (SIGINT) stops the web server, the worker and beat.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL",
                                                            "EMAIL_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DEBUG="true", VAR_DIR=str(var_dir), HEARTBEAT_INTERVAL_SECONDS="2", PYTHONUNBUFFERED="1")
    return env


def _manage(env, *args) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _get(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return r.status, r.read().decode()


@pytest.fixture(scope="module")
def running_app(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("make-run")
    env = _embedded_env(var_dir)
    _manage(env, "migrate", "--noinput")
    first = _manage(env, "load_demo")
    second = _manage(env, "load_demo")
    port = _free_port()
    log = open(var_dir / "run.log", "w")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(
        ["./scripts/run.sh"], cwd=ROOT, env={**env, "PORT": str(port), "PY": sys.executable},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(base + "/health/")[0] == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the web server did not start: " + (var_dir / "run.log").read_text()[-3000:])
    yield {"base": base, "proc": proc, "var": var_dir, "first": first, "second": second, "log": var_dir / "run.log"}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def test_demo_load_is_idempotent_and_prints_credentials(running_app):
    assert "40 patients added, 40 in all" in running_app["first"]
    assert "0 patients added, 40 in all" in running_app["second"]
    assert "nurse.north" in running_app["first"] and "alectinib-demo-2026" in running_app["first"]
    db = sqlite3.connect(running_app["var"] / "db.sqlite3")
    assert db.execute("select count(*) from patients_patient").fetchone()[0] == 40
    assert db.execute("select count(*) from accounts_clinic").fetchone()[0] == 2


def test_beat_and_worker_run_a_real_task_on_the_embedded_broker(running_app):
    deadline = time.monotonic() + 60
    body = {}
    while time.monotonic() < deadline:
        body = json.loads(_get(running_app["base"] + "/health/")[1])
        if body.get("scheduler") == "ok":
            break
        time.sleep(1)
    assert body.get("scheduler") == "ok", running_app["log"].read_text()[-3000:]
    db = sqlite3.connect(running_app["var"] / "db.sqlite3")
    assert db.execute("select runs from monitoring_heartbeat where name='heartbeat'").fetchone()[0] >= 1


@pytest.mark.browser
def test_demo_nurse_signs_in_through_a_real_browser(running_app, page, artifacts):
    page.goto(running_app["base"] + "/")
    assert "/login/" in page.url
    page.screenshot(path=str(artifacts / "make-run-login.png"))
    page.fill("#id_username", "nurse.north")
    page.fill("#id_password", "alectinib-demo-2026")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login/" not in page.url
    assert "Nora Hale" in page.inner_text("[data-testid=nav-user]")
    page.screenshot(path=str(artifacts / "make-run-signed-in.png"), full_page=True)


def test_ctrl_c_stops_web_worker_and_beat(running_app):
    proc = running_app["proc"]
    children = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) >= 4  # run.sh, runserver, worker (+ pool), beat
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.5)
    assert not left, f"still running after Ctrl-C: {left}"
