"""Personas and cross-app fixtures, plus the Playwright set-up for Debian's chromium.

Personas (healthchecks' alice/bob/charlie): nurse, prescriber, staff and clinic_admin of
clinic A; outsider, a nurse of clinic B. Every access test uses the same people.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "test-artifacts"


@pytest.fixture(autouse=True)
def _default_requirements(request):
    """Transactional tests flush the database, data migrations included: put the default
    monitoring requirements and the published protocols back for every database test."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if not marker and not names & {"db", "transactional_db"}:
        return
    transactional = "transactional_db" in names or "live_server" in names or (marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from importlib import import_module

    from django.apps import apps

    # The data migrations themselves, run again (both are idempotent).
    import_module("monitoring.migrations.0003_default_requirements").create(apps, None)
    import_module("monitoring.migrations.0014_check_in_requirement").create(apps, None)
    import_module("protocols.migrations.0002_published_protocols").load(apps, None)


@pytest.fixture
def clinic_a(db):
    from accounts.tests.factories import ClinicFactory

    return ClinicFactory(name="Clinic A", code="a")


@pytest.fixture
def clinic_b(db):
    from accounts.tests.factories import ClinicFactory

    return ClinicFactory(name="Clinic B", code="b")


def _member(username, clinic, role):
    from accounts.tests.factories import MembershipFactory

    return MembershipFactory(user__username=username, user__first_name=username.title(), clinic=clinic, role=role).user


@pytest.fixture
def nurse(clinic_a):
    return _member("nurse", clinic_a, "nurse")


@pytest.fixture
def prescriber(clinic_a):
    return _member("prescriber", clinic_a, "prescriber")


@pytest.fixture
def staff(clinic_a):
    return _member("staff", clinic_a, "staff")


@pytest.fixture
def clinic_admin(clinic_a):
    return _member("clinicadmin", clinic_a, "admin")


@pytest.fixture
def outsider(clinic_b):
    return _member("outsider", clinic_b, "nurse")


@pytest.fixture
def outsider_prescriber(clinic_b):
    return _member("outsider_prescriber", clinic_b, "prescriber")


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- Playwright with Debian's chromium (../shared/ecosystem.md) ---------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"chromium not installed at {CHROMIUM}")
    for item in items:
        if "page" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture
def login_browser(page, live_server, client, settings):
    """Sign `user` in through the session cookie and return the page."""

    def _login(user):
        client.force_login(user)
        page.context.add_cookies([{
            "name": settings.SESSION_COOKIE_NAME,
            "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "url": live_server.url,
        }])
        return page

    return _login


# --- A real Celery worker against the test database and Redis ------------------------------


@pytest.fixture
def celery_worker_process(transactional_db, settings, tmp_path):
    """Start `celery worker` in a subprocess on the test database and REDIS_URL, with a
    queue of its own. Only on PostgreSQL + Redis: an in-memory SQLite test database
    cannot be shared with another process."""
    import subprocess
    import sys
    import time
    import uuid

    from django.db import connection

    from config.celery import app

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url or connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL=postgres://… and REDIS_URL (as in .ci/run)")
    db = connection.settings_dict
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DEBUG": "false", "HTTPS_ONLY": "false", "SECRET_KEY": "worker-test-secret-key-0123456789",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_QUEUE": queue, "VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1",
    }
    extra_env: dict[str, str] = {}

    def start(**more_env):
        extra_env.update(more_env)
        log = open(tmp_path / "worker.log", "a")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
             "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env={**env, **extra_env}, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "ready." in (tmp_path / "worker.log").read_text():
                break
            time.sleep(0.2)
        procs.append(proc)
        return proc

    procs: list = []
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    app.conf.broker_url = redis_url
    try:
        yield type("Worker", (), {"start": staticmethod(start), "log": tmp_path / "worker.log", "queue": queue, "env": env})
    finally:
        app.conf.task_default_queue = old_queue
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture(autouse=True)
def _server_clock_after_each_test():
    """An access gate called outside the test client switches the thread to the object's
    clinic zone (accounts.clinic_time); only the middleware resets it. Reset here."""
    yield
    from django.utils import timezone

    timezone.deactivate()
