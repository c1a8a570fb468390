"""Sign-in, lockout, session lifetime, and the production settings' deploy check."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from accounts.middleware import SESSION_STARTED_KEY

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_login_page_is_public_and_signs_a_nurse_in(client, nurse):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "nurse", "password": "x-test-password-123"})
    assert response.status_code == 302
    assert client.get(reverse("patient_list")).status_code == 200


def test_wrong_password_message_does_not_reveal_whether_the_account_exists(client, nurse):
    a = client.post(reverse("login"), {"username": "nurse", "password": "wrong"}).content.decode()
    b = client.post(reverse("login"), {"username": "nobody", "password": "wrong"}).content.decode()
    assert "The username or password is not right" in a and "The username or password is not right" in b


def test_repeated_failures_lock_the_user_from_that_address_but_not_a_colleague(client, nurse, prescriber, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "nurse", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "nurse", "password": "x-test-password-123"})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    response = client.post(reverse("login"), {"username": "prescriber", "password": "x-test-password-123"})
    assert response.status_code == 302


def test_session_slides_and_idles_out_after_15_minutes_by_default(settings):
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_session_ends_after_the_absolute_lifetime(client, nurse, settings):
    client.force_login(nurse)
    assert client.get(reverse("patient_list")).status_code == 200
    session = client.session
    session[SESSION_STARTED_KEY] = time.time() - settings.SESSION_ABSOLUTE_HOURS * 3600 - 1
    session.save()
    response = client.get(reverse("patient_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("patient_list")).status_code == 302


def test_logout_ends_the_session(client, nurse):
    client.force_login(nurse)
    client.post(reverse("logout"))
    assert client.get(reverse("patient_list")).status_code == 302


def test_deactivated_user_is_signed_out(client, nurse):
    client.force_login(nurse)
    nurse.is_active = False
    nurse.save()
    assert client.get(reverse("patient_list")).status_code == 302


def test_health_is_public_and_reports_the_scheduler(client):
    from django.utils import timezone

    from monitoring.services import heartbeat_record

    body = client.get(reverse("health")).json()
    assert {k: body[k] for k in ("database", "scheduler", "heartbeat_at", "status")} == {
        "database": "ok", "scheduler": "never-run", "heartbeat_at": None, "status": "degraded"}
    heartbeat_record(name="heartbeat", now=timezone.now())
    body = client.get(reverse("health")).json()
    assert body["scheduler"] == "ok" and body["status"] == "ok" and body["broker"] == "ok"


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "clinic.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "VAR_DIR": str(tmp_path),
    }
    env.pop("HTTPS_ONLY", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for Playwright in this test process only
    env.pop("REDIS_URL", None)  # CI's Redis has no password: that check has its own test
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "DEBUG": "false", "VAR_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is false" in result.stderr


def test_a_bad_boolean_fails_loudly(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "DEBUG": "maybe", "VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert "DEBUG must be true or false, not 'maybe'" in result.stderr


@pytest.mark.parametrize(("behind_proxy", "trusted"), [(None, "None"), ("true", "('HTTP_X_FORWARDED_PROTO', 'https')")])
def test_x_forwarded_proto_is_trusted_only_when_behind_a_proxy(tmp_path, behind_proxy, trusted):
    """A client reaching gunicorn directly must not claim HTTPS with a header (reliability.md)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "DEBUG": "false",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "clinic.example.org",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "VAR_DIR": str(tmp_path)}
    env.pop("BEHIND_PROXY", None)
    env.pop("HTTPS_ONLY", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    if behind_proxy:
        env["BEHIND_PROXY"] = behind_proxy
    code = "from django.conf import settings; print(getattr(settings, 'SECURE_PROXY_SSL_HEADER', None))"
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == trusted, result.stderr


@pytest.mark.parametrize(
    ("database_url", "redis_url", "warnings"),
    [
        ("postgres://app@db.example.org:5432/x", "redis://redis.example.org:6379/0", ["accounts.W001", "accounts.W002"]),
        ("postgres://app:s3cret@db.example.org:5432/x?sslmode=verify-full",
         "rediss://:s3cret@redis.example.org:6380/0?ssl_cert_reqs=required", []),
    ],
)
def test_deploy_check_refuses_backends_without_a_password(tmp_path, database_url, redis_url, warnings):
    """reliability.md S14: production settings without backend credentials fail the deploy check."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "DEBUG": "false",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "clinic.example.org",
           "DATABASE_URL": database_url, "REDIS_URL": redis_url, "VAR_DIR": str(tmp_path)}
    env.pop("HTTPS_ONLY", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    for warning in warnings:
        assert warning in result.stderr + result.stdout
    assert (result.returncode == 0) is (not warnings), result.stdout + result.stderr
