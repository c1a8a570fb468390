"""Issue 3: impossible dates. One rule (protocols.dates) on every date a user types, checked
through the pages at each limit: just inside, just outside.

Frozen at 12:00 on 15 Jun 2026 in London (the clinics' zone). The patient was born on
17 May 1960 and started alectinib on 16 May 2026 (30 days ago)."""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from patients.models import ClinicalEvent, ConcomitantMedication, LabResult, Patient, TreatmentCourse
from patients.tests.factories import PatientFactory, clinic_ranges, started_patient
from protocols import dates

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("Europe/London"))
TODAY = NOW.date()
BORN = date(1960, 5, 17)
COURSE_START = TODAY - timedelta(days=30)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber, days_ago=30, mrn="A-001", date_of_birth=BORN)


def day(d: date) -> str:
    return d.isoformat()


def form_errors(response, field: str) -> str:
    assert response.status_code == 200, response.status_code  # re-displayed, not saved
    return " ".join(response.context["form"].errors.get(field, []))


# --- the rule itself, without the database -------------------------------------------------


@pytest.mark.parametrize(("value", "planned", "problem"), [
    (date(1899, 12, 31), False, "before 1900"),
    (date(1900, 1, 1), False, None),
    (TODAY, False, None),
    (TODAY + timedelta(days=1), False, "cannot be in the future"),
    (TODAY + timedelta(days=365), True, None),
    (TODAY + timedelta(days=366), True, "more than a year ahead"),
    (date(9999, 12, 31), True, "more than a year ahead"),
    (date(1, 1, 1), True, "before 1900"),
])
def test_the_rule_at_its_limits(value, planned, problem):
    got = dates.date_problem(value, today=TODAY, planned=planned)
    assert (got is None) if problem is None else (problem in got)


def test_the_rule_for_birth_and_times():
    assert dates.date_problem(BORN, today=TODAY, born=BORN) is None
    assert "date of birth (17 May 1960)" in dates.date_problem(BORN - timedelta(days=1), today=TODAY, born=BORN)
    assert dates.birth_date_problem(date(1906, 1, 1), today=TODAY) is None
    assert "not plausible" in dates.birth_date_problem(date(1905, 12, 31), today=TODAY)
    assert dates.datetime_problem(NOW + timedelta(minutes=5), now=NOW) is None
    assert "in the future" in dates.datetime_problem(NOW + timedelta(minutes=5, seconds=1), now=NOW)
    assert dates.long_before_course(COURSE_START - timedelta(days=365), course_start=COURSE_START) is None
    assert "I confirm this date" in dates.long_before_course(COURSE_START - timedelta(days=366), course_start=COURSE_START)
    assert dates.long_before_course(date(2000, 1, 1), course_start=None) is None


# --- patient details -----------------------------------------------------------------------


def new_patient(clinic, **kw):
    return {"clinic": clinic.pk, "mrn": "A-NEW", "first_name": "Ada", "last_name": "Lind", "date_of_birth": day(BORN),
            "sex": "F", "alk_test_method": "FISH", "alk_test_result": "positive", **kw}


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("date_of_birth", date(1906, 1, 1), None),  # 120 years back, to the year
    ("date_of_birth", date(1905, 12, 31), "not plausible"),
    ("date_of_birth", date(1900, 1, 1), "not plausible"),
    ("date_of_birth", TODAY, None),
    ("date_of_birth", TODAY + timedelta(days=1), "cannot be in the future"),
    ("alk_test_date", BORN, None),
    ("alk_test_date", BORN - timedelta(days=1), "before the patient's date of birth"),
    ("alk_test_date", TODAY, None),
    ("alk_test_date", TODAY + timedelta(days=1), "cannot be in the future"),
    ("diagnosis_date", date(1, 1, 1), "before 1900"),
    ("diagnosis_date", BORN - timedelta(days=1), "before the patient's date of birth"),
    ("diagnosis_date", TODAY + timedelta(days=1), "cannot be in the future"),
])
def test_patient_form_dates(client, nurse, clinic_a, field, value, problem):
    client.force_login(nurse)
    response = client.post(reverse("patient_create"), new_patient(clinic_a, **{field: day(value)}))
    if problem is None:
        assert response.status_code == 302 and Patient.objects.filter(mrn="A-NEW").exists()
    else:
        assert problem in form_errors(response, field)
        assert not Patient.objects.filter(mrn="A-NEW").exists()


def test_patient_form_floor_when_the_date_of_birth_is_refused(client, nurse, clinic_a):
    client.force_login(nurse)
    response = client.post(reverse("patient_create"), new_patient(
        clinic_a, date_of_birth="1800-01-01", alk_test_date="1899-12-31", diagnosis_date="1900-01-01"))
    assert "not plausible" in form_errors(response, "date_of_birth")
    assert "before 1900" in form_errors(response, "alk_test_date")
    assert form_errors(response, "diagnosis_date") == ""


def test_editing_checks_the_dates_against_the_date_of_birth_on_the_form(client, nurse, patient):
    client.force_login(nurse)
    data = new_patient(patient.clinic, mrn=patient.mrn, date_of_birth="1970-01-01", alk_test_date="1969-12-31")
    data.pop("clinic")
    response = client.post(reverse("patient_edit", args=[patient.pk]), data)
    assert "date of birth (1 Jan 1970)" in form_errors(response, "alk_test_date")


# --- course start, dose change, medication ---------------------------------------------------


@pytest.mark.parametrize(("value", "problem"), [
    (TODAY, None),
    (TODAY + timedelta(days=1), "cannot be in the future"),
    (BORN, None),
    (BORN - timedelta(days=1), "before the patient's date of birth"),
    (date(1, 1, 1), "before 1900"),
])
def test_course_start_date(client, prescriber, clinic_a, value, problem):
    fresh = PatientFactory(clinic=clinic_a, date_of_birth=BORN)
    client.force_login(prescriber)
    response = client.post(reverse("course_start", args=[fresh.pk]),
                           {"drug": "alectinib", "regime": "us", "start_date": day(value), "dose_mg_bid": "600"})
    if problem is None:
        assert response.status_code == 302 and TreatmentCourse.objects.filter(patient=fresh).exists()
    else:
        assert problem in form_errors(response, "start_date")
        assert not TreatmentCourse.objects.filter(patient=fresh).exists()


@pytest.mark.parametrize(("value", "problem"), [
    (TODAY, None),
    (TODAY + timedelta(days=1), "cannot be in the future"),
    (BORN - timedelta(days=1), "before the patient's date of birth"),
    (date(1, 1, 1), "before 1900"),
])
def test_dose_change_effective_date(client, prescriber, patient, value, problem):
    client.force_login(prescriber)
    course = patient.courses.get()
    response = client.post(reverse("dose_change", args=[patient.pk]), {
        "action": "dose", "dose_mg_bid": "450", "effective_date": day(value), "reason": "prescriber_choice",
        "note": "Tolerability", "version": course.version})
    course.refresh_from_db()
    if problem is None:
        assert response.status_code == 302 and course.dose_mg_bid == 450
    else:
        assert problem in form_errors(response, "effective_date")
        assert course.dose_mg_bid == 600


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("start_date", TODAY, None),
    ("start_date", TODAY + timedelta(days=1), "cannot be in the future"),
    ("start_date", BORN - timedelta(days=1), "before the patient's date of birth"),
    ("end_date", TODAY + timedelta(days=365), None),  # a planned stop: up to a year ahead
    ("end_date", TODAY + timedelta(days=366), "more than a year ahead"),
    ("end_date", date(9999, 12, 31), "more than a year ahead"),
])
def test_medication_dates(client, nurse, patient, field, value, problem):
    client.force_login(nurse)
    data = {"name": "Bisoprolol", "category": "beta_blocker", "start_date": day(TODAY - timedelta(days=3000)),
            field: day(value)}
    response = client.post(reverse("medication_create", args=[patient.pk]), data)
    if problem is None:
        assert response.status_code == 302 and ConcomitantMedication.objects.exists()
    else:
        assert problem in form_errors(response, field)
        assert not ConcomitantMedication.objects.exists()


def test_a_medicine_started_years_before_the_course_needs_no_confirmation(client, nurse, patient):
    client.force_login(nurse)
    response = client.post(reverse("medication_create", args=[patient.pk]),
                           {"name": "Bisoprolol", "category": "beta_blocker", "start_date": "2010-01-01"})
    assert response.status_code == 302


# --- clinical events: the warning a user confirms ---------------------------------------------


def post_event(client, patient, onset, **more):
    return client.post(reverse("event_create", args=[patient.pk]),
                       {"kind": "myalgia", "grade": "1", "onset_date": day(onset), **more})


def test_event_onset_a_year_before_the_course_is_accepted(client, nurse, patient):
    client.force_login(nurse)
    assert post_event(client, patient, COURSE_START - timedelta(days=365)).status_code == 302
    assert ClinicalEvent.objects.count() == 1


def test_event_onset_more_than_a_year_before_the_course_warns_until_confirmed(client, nurse, patient):
    client.force_login(nurse)
    onset = COURSE_START - timedelta(days=366)
    response = post_event(client, patient, onset)
    assert "more than a year before the treatment course began (16 May 2026)" in form_errors(response, "onset_date")
    page = response.content.decode()
    assert 'name="confirm_dates"' in page and "I confirm this date" in page
    assert not ClinicalEvent.objects.exists()
    assert post_event(client, patient, onset, confirm_dates="on").status_code == 302
    assert ClinicalEvent.objects.get().onset_date == onset


def test_the_confirmation_box_appears_only_with_the_warning(client, nurse, patient):
    client.force_login(nurse)
    response = client.get(reverse("event_create", args=[patient.pk]))
    assert response.status_code == 200 and 'name="onset_date"' in response.content.decode()
    assert 'name="confirm_dates"' not in response.content.decode()
    response = post_event(client, patient, TODAY + timedelta(days=1))
    assert "cannot be in the future" in form_errors(response, "onset_date")
    assert 'name="confirm_dates"' not in response.content.decode()


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("onset_date", TODAY, None),
    ("onset_date", TODAY + timedelta(days=1), "cannot be in the future"),
    ("onset_date", BORN - timedelta(days=1), "before the patient's date of birth"),
    ("resolved_date", TODAY, None),
    ("resolved_date", TODAY + timedelta(days=1), "cannot be in the future"),
])
def test_event_dates(client, nurse, patient, field, value, problem):
    client.force_login(nurse)
    data = {"kind": "myalgia", "grade": "1", "onset_date": day(TODAY), field: day(value)}
    response = client.post(reverse("event_create", args=[patient.pk]), data)
    if problem is None:
        assert response.status_code == 302
    else:
        assert problem in form_errors(response, field)
        assert not ClinicalEvent.objects.exists()


# --- lab panels: a date and time ---------------------------------------------------------------


def post_panel(client, patient, collected_at: str, **more):
    return client.post(reverse("lab_panel", args=[patient.pk]),
                       {"collected_at": collected_at, "alt_value": "30", **more})


@pytest.mark.parametrize(("collected_at", "problem"), [
    ("2026-06-15T12:05", None),  # 5 minutes ahead: clock skew
    ("2026-06-15T12:06", "in the future"),
    ("1900-01-01T00:00", "before the patient's date of birth"),  # from the issue
    ("0001-01-01T00:00", "before 1900"),  # from the issue
    ("1960-05-17T00:00", "more than a year before"),  # born that day: a warning, not a refusal
    ("1960-05-16T23:59", "before the patient's date of birth"),
])
def test_lab_collection_time(client, nurse, patient, collected_at, problem):
    client.force_login(nurse)
    response = post_panel(client, patient, collected_at)
    if problem is None:
        assert response.status_code == 302 and LabResult.objects.count() == 1
    else:
        assert problem in form_errors(response, "collected_at")
        assert not LabResult.objects.exists()


def test_lab_collected_more_than_a_year_before_the_course_needs_confirmation(client, nurse, patient):
    client.force_login(nurse)
    assert post_panel(client, patient, "2025-05-16T00:00").status_code == 302  # exactly 365 days before
    response = post_panel(client, patient, "2025-05-15T23:59")
    assert "I confirm this date" in form_errors(response, "collected_at")
    assert 'data-testid="confirm-dates"' in response.content.decode()
    assert LabResult.objects.count() == 1
    assert post_panel(client, patient, "2025-05-15T23:59", confirm_dates="on").status_code == 302
    assert LabResult.objects.count() == 2


# --- accepting a recommendation ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "problem"), [
    (BORN - timedelta(days=1), "before the patient's date of birth"),
    (date(1, 1, 1), "before 1900"),
])
def test_accept_refuses_an_impossible_date(client, nurse, prescriber, patient, value, problem):
    from patients.models import Recommendation
    from patients.services import LabEntry, lab_panel_record

    lab_panel_record(patient=patient, collected_at=NOW - timedelta(hours=1), entered_by=nurse,
                     entries=[LabEntry("alt", "250")])
    rec = Recommendation.objects.get()
    client.force_login(prescriber)
    response = client.post(reverse("recommendation_accept", args=[patient.pk, rec.pk]),
                           {"effective_date": day(value)}, follow=True)
    assert problem in html.unescape(response.content.decode())
    rec.refresh_from_db()
    assert rec.status == "pending"
