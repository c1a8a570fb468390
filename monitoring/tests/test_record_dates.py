"""Issue 3 on the monitoring forms: the date of a recorded test and a follow-up's snooze
date follow the one date rule (protocols.dates), at each limit. Frozen at 12:00 on
15 Jun 2026 in London; the patient started on 16 May 2026 and was born on 17 May 1960."""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from monitoring import services
from monitoring.models import MonitoringItem, MonitoringRecord
from patients.tests.factories import clinic_ranges, started_patient

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("Europe/London"))
TODAY = NOW.date()
COURSE_START = TODAY - timedelta(days=30)
BORN = date(1960, 5, 17)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber, days_ago=30, date_of_birth=BORN)


def post_record(client, patient, performed_on: date, **more):
    return client.post(reverse("record_test", args=[patient.pk]),
                       {"requirement_code": "brain_imaging", "performed_on": performed_on.isoformat(), **more})


@pytest.mark.parametrize(("performed_on", "problem"), [
    (TODAY, None),
    (TODAY + timedelta(days=1), "cannot be in the future"),
    (COURSE_START - timedelta(days=365), None),
    (COURSE_START - timedelta(days=366), "more than a year before the treatment course began"),
    (BORN - timedelta(days=1), "before the patient's date of birth"),
    (date(1, 1, 1), "before 1900"),
])
def test_recorded_test_date(client, nurse, patient, performed_on, problem):
    client.force_login(nurse)
    response = post_record(client, patient, performed_on)
    if problem is None:
        assert response.status_code == 302 and MonitoringRecord.objects.get().performed_on == performed_on
    else:
        assert problem in " ".join(response.context["form"].errors["performed_on"])
        assert not MonitoringRecord.objects.exists()


def test_an_old_test_date_is_saved_once_confirmed(client, nurse, patient):
    client.force_login(nurse)
    old = COURSE_START - timedelta(days=366)
    assert "I confirm this date" in post_record(client, patient, old).content.decode()
    assert post_record(client, patient, old, confirm_dates="on").status_code == 302
    assert MonitoringRecord.objects.get().performed_on == old


@pytest.mark.parametrize(("until", "problem"), [
    (TODAY + timedelta(days=7), None),
    (TODAY + timedelta(days=8), "Snooze at most 7 days"),  # the service's own, narrower limit
    (TODAY + timedelta(days=366), "more than a year ahead"),
    (date(9999, 12, 31), "more than a year ahead"),
])
def test_follow_up_snooze_date(client, nurse, patient, until, problem):
    services.patient_schedule_recompute(patient_id=patient.pk, today=TODAY)
    item = MonitoringItem.objects.filter(course__patient=patient).first()
    client.force_login(nurse)
    response = client.post(reverse("follow_up", args=[item.pk]),
                           {"kind": "ordered", "note": "At the GP", "until": until.isoformat()}, follow=True)
    # Refused: the follow-up page again, with the message and the entry (400); saved: the worklist.
    assert response.status_code == (200 if problem is None else 400)
    item.refresh_from_db()
    if problem is None:
        assert item.snoozed_until == until
    else:
        assert problem in html.unescape(response.content.decode())
        assert item.snoozed_until is None
