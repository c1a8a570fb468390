"""Celery tasks run by a real worker, or called in process with apply(); never with the
app in eager mode (it hides transaction bugs). The beat schedule is checked by running
what each entry names."""

import time
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError

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


@pytest.mark.django_db
def test_a_database_error_is_retried_five_times_then_the_task_fails():
    """Retries run at once under apply() (eager), without the backoff's countdown. Acks-late
    redelivery after a killed worker is faults/test_faults.py F1 (make faults)."""
    from celery.signals import task_retry

    retries = []

    def count(**kwargs):
        retries.append(kwargs["reason"])

    task_retry.connect(count, sender=heartbeat, weak=False)
    try:
        # The database itself fails (the edge), whatever query the service makes first.
        with mock.patch("django.db.backends.utils.CursorWrapper.execute",
                        side_effect=OperationalError("database is locked")):
            result = heartbeat.apply()
    finally:
        task_retry.disconnect(count, sender=heartbeat)
    assert len(retries) == 5 and all(isinstance(r.exc, OperationalError) for r in retries)
    assert result.failed() is True and isinstance(result.result, OperationalError)


@pytest.mark.django_db
@pytest.mark.parametrize("entry", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_beat_entry_names_a_registered_task_that_runs_and_records_its_heartbeat(entry):
    from config.celery import app

    name = settings.CELERY_BEAT_SCHEDULE[entry]["task"]
    app.loader.import_default_modules()  # autodiscovery, as a worker does at start
    assert name in app.tasks, f"beat entry {entry!r} names no registered task"
    # The tick makes up a missed daily sweep by enqueueing it: no broker here.
    with mock.patch("monitoring.tasks.monitoring_full_sweep.delay"):
        result = app.tasks[name].apply()
    assert result.successful() is True, result.traceback
    assert Heartbeat.objects.get(name=name.rsplit(".", 1)[1]).runs == 1
