"""Celery tasks run by a real worker (no eager mode: it hides transaction bugs)."""

import time

import pytest

from monitoring.models import Heartbeat
from monitoring.tasks import heartbeat


@pytest.mark.slow
def test_heartbeat_runs_through_a_real_worker_on_redis_and_postgresql(celery_worker_process):
    celery_worker_process.start()
    heartbeat.delay()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not Heartbeat.objects.filter(name="heartbeat").exists():
        time.sleep(0.3)
    beat = Heartbeat.objects.get(name="heartbeat")
    assert beat.runs == 1


@pytest.mark.django_db
def test_heartbeat_task_is_idempotent_when_run_twice():
    heartbeat.apply()
    heartbeat.apply()
    assert Heartbeat.objects.get(name="heartbeat").runs == 2
    assert Heartbeat.objects.count() == 1


def test_heartbeat_is_acked_late_and_retries_with_backoff(settings):
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert heartbeat.retry_backoff is True and heartbeat.max_retries == 5


def test_heartbeat_is_on_the_beat_schedule(settings):
    assert settings.CELERY_BEAT_SCHEDULE["heartbeat"]["task"] == "monitoring.tasks.heartbeat"
