"""Stored due dates (style.md habit 1): every requirement of a course on treatment has its
next due date stored, recomputed after commit when a result, a dose or the course changes;
a failed recompute is caught up by the job. The scenario is in monitoring/tests/scenario.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from monitoring import services
from monitoring.models import MonitoringItem
from monitoring.tests.scenario import START, TODAY, items, lft
from patients.models import TreatmentCourse
from patients.services import LabEntry, dose_change_record, lab_panel_record, patient_archive
from patients.tests.factories import PatientFactory
from protocols.dosing import Dose, DoseState, Reason

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def test_due_dates_are_stored_for_every_requirement(course):
    got = items(course)
    assert set(got) == {"lft", "cpk", "vitals", "creatinine", "hemoglobin", "brain_imaging", "cmin", "checkin"}
    assert got["lft"].due_date == date(2026, 1, 19)  # day 14, no test yet
    assert got["lft"].overdue_from == date(2026, 1, 20)
    assert got["lft"].status_on(TODAY) == "overdue"
    assert got["cpk"].due_date is None and "missed" in got["cpk"].notice
    assert got["vitals"].due_date is None  # clinic policy not set


def test_a_result_moves_the_due_date_and_only_full_panels_count(course, nurse):
    lft(course, nurse, date(2026, 2, 2))
    assert items(course)["lft"].due_date == date(2026, 2, 16)
    when = timezone.make_aware(datetime(2026, 2, 10, 9))
    lab_panel_record(patient=course.patient, collected_at=when, entered_by=nurse, now=when,
                     entries=[LabEntry("alt", "30")])  # ALT alone is not the LFT panel
    assert items(course)["lft"].due_date == date(2026, 2, 16)


def test_withheld_patients_stay_monitored(course, nurse, prescriber):
    lft(course, nurse, date(2026, 2, 2))
    dose_change_record(course=course, to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=450), effective_date=date(2026, 2, 3),
                       reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    assert items(course)["lft"].due_date == date(2026, 2, 16)
    lft(course, nurse, date(2026, 2, 12))  # a test while withheld still counts (§5.6)
    assert items(course)["lft"].due_date == date(2026, 2, 26)


def test_discontinued_and_archived_patients_drop_out(course, prescriber, clinic_a):
    items(course)
    dose_change_record(course=course, to=Dose(DoseState.DISCONTINUED), effective_date=date(2026, 2, 3),
                       reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    assert all(i.due_date is None for i in items(course).values())
    assert not MonitoringItem.objects.overdue(TODAY).exists()
    other = PatientFactory(clinic=clinic_a)
    from patients.services import course_start

    c2 = course_start(patient=other, start_date=START, ordered_by=prescriber, recorded_by=prescriber)
    assert items(c2)["lft"].due_date is not None
    patient_archive(patient=other)
    assert items(c2)["lft"].due_date is None


def test_changing_the_start_date_recomputes_after_commit(course, django_capture_on_commit_callbacks):
    items(course)
    with django_capture_on_commit_callbacks(execute=True):
        c = TreatmentCourse.objects.get(pk=course.pk)
        c.start_date = date(2026, 2, 10)
        c.save()
    item = MonitoringItem.objects.get(course=course, requirement__code="lft")
    assert item.due_date == date(2026, 2, 24)


def test_saving_a_panel_recomputes_after_commit(course, nurse, django_capture_on_commit_callbacks):
    items(course)
    with django_capture_on_commit_callbacks(execute=True):
        lft(course, nurse, date(2026, 2, 18))
    assert MonitoringItem.objects.get(course=course, requirement__code="lft").due_date == date(2026, 3, 4)


def test_a_failed_recompute_marks_the_patient_dirty_and_the_job_catches_up(course, nurse, django_capture_on_commit_callbacks):
    from monitoring.models import DirtyPatient

    items(course)
    with mock.patch("monitoring.services.patient_schedule_recompute", side_effect=RuntimeError("db hiccup")), \
            django_capture_on_commit_callbacks(execute=True):
        lft(course, nurse, date(2026, 2, 18))
    assert DirtyPatient.objects.filter(patient_id=course.patient_id).exists()
    assert MonitoringItem.objects.get(course=course, requirement__code="lft").due_date == date(2026, 1, 19)
    assert services.schedule_sweep(full=False, today=TODAY) == 1
    assert MonitoringItem.objects.get(course=course, requirement__code="lft").due_date == date(2026, 3, 4)
    assert not DirtyPatient.objects.exists()


def test_each_change_recomputes_due_dates_once(course, prescriber, django_capture_on_commit_callbacks):
    """A service save announces itself once; the post_save receivers only catch admin/form saves."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dose_change_record(course=course, to=Dose(DoseState.ON_DRUG, 450), effective_date=TODAY,
                           reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        patient_archive(patient=course.patient)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        course.start_date = START + timedelta(days=1)
        course.save()  # as the admin does
    assert len(callbacks) == 1


# --- the overdue query uses its index ---------------------------------------------------------------


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="EXPLAIN plans are checked on PostgreSQL")
def test_overdue_query_plan_uses_the_index(course):
    from monitoring.benchmark import build_items, explain_overdue

    build_items(clinic_id=course.patient.clinic_id, course=course, n=20000)
    plan_text = explain_overdue(today=TODAY, clinic_id=course.patient.clinic_id)
    assert "Index" in plan_text and ("item_clinic_overdue_idx" in plan_text or "item_overdue_idx" in plan_text), plan_text
    assert "Seq Scan on monitoring_monitoringitem" not in plan_text


def test_connection_is_available():
    assert connection.vendor in ("sqlite", "postgresql")
