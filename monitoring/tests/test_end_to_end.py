"""The real beat-scheduled job through a real Celery worker, on Redis and PostgreSQL,
delivering to a local SMTP server (aiosmtpd); a second run delivers nothing new."""

from __future__ import annotations

import socket
import time
from datetime import time as dtime
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.tests.factories import MembershipFactory
from monitoring.models import ClinicSettings, Digest, Heartbeat, MonitoringItem
from monitoring.services import patient_schedule_recompute
from patients.services import course_start
from patients.tests.factories import PatientFactory, clinic_ranges

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout=40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_beat_task_sends_the_digest_once_through_worker_redis_and_smtp(celery_worker_process, smtp_sink, clinic_a,
                                                                       prescriber):
    from config.celery import app

    clinic_a.timezone = "UTC"
    clinic_a.save()
    ClinicSettings.objects.create(clinic=clinic_a, digest_time=dtime(0, 0), escalation_days=365)
    clinic_ranges(clinic_a)
    patient = PatientFactory(clinic=clinic_a, mrn="E2E-1", first_name="Secret", last_name="Name")
    course_start(patient=patient, start_date=timezone.localdate() - timedelta(days=40), ordered_by=prescriber,
                 recorded_by=prescriber)
    patient_schedule_recompute(patient_id=patient.pk)
    assert MonitoringItem.objects.filter(course__patient=patient, overdue_from__lte=timezone.localdate()).exists()
    MembershipFactory(user__username="e2e.staff", user__email="staff@clinic.example", clinic=clinic_a, role="staff")

    celery_worker_process.start(EMAIL_URL=f"smtp://127.0.0.1:{smtp_sink.port}", SITE_URL="https://clinic.example")
    task_name = settings.CELERY_BEAT_SCHEDULE["monitoring-tick"]["task"]
    app.send_task(task_name)
    assert wait_for(lambda: len(smtp_sink.messages) >= 1), celery_worker_process.log.read_text()[-4000:]
    mail_from, rcpt, content = smtp_sink.messages[0]
    text = content.decode()
    assert rcpt == ["staff@clinic.example"]
    assert "E2E-1" in text and "Secret" not in text and "https://clinic.example/" in text
    assert "text/html" in text and "text/plain" in text
    assert wait_for(lambda: Digest.objects.filter(status="sent").count() == 1)

    app.send_task(task_name)  # the next beat tick, same day
    assert wait_for(lambda: Heartbeat.objects.filter(name="monitoring_tick", runs__gte=2).exists())
    time.sleep(2)
    assert len(smtp_sink.messages) == 1
    assert Digest.objects.count() == 1


@pytest.fixture
def black_hole():
    """An SMTP 'server' that accepts connections and never says a word (reliability.md F7)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_worker_killed_mid_send_loses_nothing(celery_worker_process, smtp_sink, black_hole, clinic_a, prescriber):
    """kill -9 the worker while it is stuck sending: the claimed row outlives it, the next
    tick requeues it after the lease, and a new worker delivers exactly one copy."""
    from config.celery import app

    clinic_a.timezone = "UTC"
    clinic_a.save()
    ClinicSettings.objects.create(clinic=clinic_a, digest_time=dtime(0, 0), escalation_days=365)
    clinic_ranges(clinic_a)
    patient = PatientFactory(clinic=clinic_a, mrn="KILL-1")
    course_start(patient=patient, start_date=timezone.localdate() - timedelta(days=40), ordered_by=prescriber,
                 recorded_by=prescriber)
    patient_schedule_recompute(patient_id=patient.pk)
    MembershipFactory(user__username="kill.staff", user__email="staff@clinic.example", clinic=clinic_a, role="staff")
    task_name = settings.CELERY_BEAT_SCHEDULE["monitoring-tick"]["task"]

    stuck = celery_worker_process.start(EMAIL_URL=f"smtp://127.0.0.1:{black_hole}", EMAIL_TIMEOUT="60",
                                        DIGEST_LEASE_SECONDS="3")
    app.send_task(task_name)
    assert wait_for(lambda: Digest.objects.filter(status="sending").exists()), celery_worker_process.log.read_text()[-3000:]
    stuck.kill()  # SIGKILL: no warm shutdown, no ack, no cleanup
    stuck.wait(timeout=10)
    assert Digest.objects.get().status == "sending"

    celery_worker_process.start(EMAIL_URL=f"smtp://127.0.0.1:{smtp_sink.port}", DIGEST_LEASE_SECONDS="3")
    time.sleep(3.5)  # the dead worker's lease runs out
    app.send_task(task_name)  # the next beat tick requeues the abandoned row
    assert wait_for(lambda: len(smtp_sink.messages) >= 1), celery_worker_process.log.read_text()[-3000:]
    assert wait_for(lambda: Digest.objects.get().status == "sent")
    time.sleep(2)
    assert len(smtp_sink.messages) == 1
    digest = Digest.objects.get()
    assert digest.attempts == 2
