"""The scenario of the due-date, requirement, follow-up and digest tests
(test_schedule, test_requirements, test_follow_ups, test_digests, test_digest_delivery):
Greta Holm (A-0042) of clinic A started alectinib on 5 Jan 2026 (START); the tests run
on 20 Feb 2026 at 09:00 (TODAY; the `frozen` fixture of monitoring/tests/conftest.py),
when her first liver panel, due on day 14 (19 Jan), is 32 days overdue.

Dates are pinned with time_machine; the database holds the truth, so every test checks rows."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time

from django.utils import timezone

from monitoring import services
from monitoring.models import Digest, MonitoringItem
from patients.services import LabEntry, lab_panel_record

TODAY = date(2026, 2, 20)
START = date(2026, 1, 5)


def lft(course, user, day: date, hour=9):
    when = timezone.make_aware(datetime.combine(day, time(hour)))
    lab_panel_record(patient=course.patient, collected_at=when, entered_by=user, now=when,
                     entries=[LabEntry("alt", "30"), LabEntry("ast", "25"), LabEntry("total_bilirubin", "0.6")])


def items(course) -> dict[str, MonitoringItem]:
    services.patient_schedule_recompute(patient_id=course.patient_id, today=TODAY)
    return {i.requirement.code: i for i in MonitoringItem.objects.filter(course=course).select_related("requirement")}


def plan(hour=8):
    now = timezone.make_aware(datetime.combine(TODAY, time(hour)))
    return services.digests_plan(now=now)


def send_all():
    for pk in Digest.objects.filter(status="pending").values_list("pk", flat=True):
        with contextlib.suppress(services.DigestDeferred):
            services.digest_send(digest_id=pk)
