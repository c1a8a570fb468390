"""Operations (issue: /health/ said "ok" with the broker down; a lost daily sweep waited a
night; the admin's patient search put names in URLs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.urls import reverse

from config.celery import app
from monitoring import services
from monitoring.models import Heartbeat
from monitoring.tasks import monitoring_tick

pytestmark = pytest.mark.django_db


def test_health_reports_the_broker_and_the_queue(client):
    body = client.get(reverse("health")).json()
    assert body["database"] == "ok" and body["broker"] == "ok" and isinstance(body["queue_length"], int)


def test_health_says_degraded_when_the_broker_is_down(client):
    old = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get(reverse("health"))
    finally:
        app.conf.broker_url = old
    body = response.json()
    assert response.status_code == 200, "pages still work: a load balancer keeps the web up"
    assert body["broker"] == "down" and body["status"] == "degraded"


def at(hour, minute=0, day=22):
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_sweep", "now", "due"),
    [
        (None, at(9), True),  # never ran
        (at(0, 16), at(9), False),  # tonight's sweep ran
        (at(0, 16, day=21), at(9), True),  # tonight's was lost: make it up now
        (at(0, 16, day=21), at(0, 30), False),  # tonight's may still be running (grace)
        (at(0, 16, day=20), at(0, 30), True),  # yesterday's was lost too
    ],
)
def test_a_lost_daily_sweep_is_due(last_sweep, now, due):
    if last_sweep:
        Heartbeat.objects.create(name="monitoring_full_sweep", last_run_at=last_sweep, runs=1)
    assert services.full_sweep_due(now=now) is due


def test_the_tick_makes_up_a_lost_sweep_once():
    Heartbeat.objects.create(name="monitoring_full_sweep", last_run_at=datetime.now(UTC) - timedelta(days=2), runs=1)
    with mock.patch("monitoring.tasks.monitoring_full_sweep.delay") as delay:
        assert monitoring_tick()["full_sweep_made_up"] is True
        assert monitoring_tick()["full_sweep_made_up"] is False, "claimed: not enqueued twice"
    assert delay.call_count == 1


def test_the_admin_patient_list_has_no_search_in_the_url(client, clinic_a, clinic_admin):
    clinic_admin.is_staff = True
    clinic_admin.save()
    from django.contrib.auth.models import Permission

    clinic_admin.user_permissions.add(*Permission.objects.filter(codename="view_patient"))
    client.force_login(clinic_admin)
    response = client.get(reverse("admin:patients_patient_changelist"))
    body = response.content.decode()
    assert response.status_code == 200 and 'id="changelist"' in body
    assert 'id="searchbar"' not in body
