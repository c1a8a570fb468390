"""Two prescribers, one dose (issue #12 item 4): every form that changes a course, a plan
or a recommendation carries the version it was read at; a stale post is refused with a
conflict message and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import DoseChangeEvent, Recommendation, TreatmentCourse
from patients.services import LabEntry, dose_change_record, lab_panel_record
from patients.tests.factories import clinic_ranges, started_patient
from protocols.dosing import Dose, DoseState, Reason

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber)
    course = patient.courses.get()
    dose_change_record(course=course, to=Dose(DoseState.ON_DRUG, 450), reason=Reason.TOXICITY, toxicity="Nausea",
                       ordered_by=prescriber, recorded_by=prescriber, effective_date=timezone.localdate() - timedelta(days=5))
    return patient


@pytest.fixture
def second_prescriber(clinic_a):
    from accounts.tests.factories import MembershipFactory

    return MembershipFactory(user__username="prescriber2", clinic=clinic_a, role="prescriber").user


def dose_form(version, **fields):
    return {"effective_date": timezone.localdate().isoformat(), "version": version, **fields}


def test_the_second_of_two_dose_changes_read_at_450_is_refused(client, patient, prescriber, second_prescriber):
    course = patient.courses.get()
    read_at = course.version  # both prescribers open the form on 450 mg
    client.force_login(prescriber)
    first = client.post(reverse("dose_change", args=[patient.pk]),
                        dose_form(read_at, action="dose", dose_mg_bid="300", reason="toxicity", toxicity="Nausea"))
    assert first.status_code == 302
    client.force_login(second_prescriber)
    second = client.post(reverse("dose_change", args=[patient.pk]),
                         dose_form(read_at, action="withhold", dose_mg_bid="300", reason="toxicity", toxicity="Nausea"))
    assert second.status_code == 200 and "changed by someone else" in second.content.decode()
    course.refresh_from_db()
    assert (course.dose_state, course.dose_mg_bid) == ("on_drug", 300)
    assert DoseChangeEvent.objects.filter(course=course).count() == 3  # start, 450, 300: no silent withhold


def test_a_dose_change_form_without_a_version_is_refused(client, patient, prescriber):
    client.force_login(prescriber)
    response = client.post(reverse("dose_change", args=[patient.pk]),
                           {"effective_date": timezone.localdate().isoformat(), "action": "dose", "dose_mg_bid": "300",
                            "reason": "toxicity", "toxicity": "Nausea"})
    assert "out of date" in response.content.decode()
    assert patient.courses.get().dose_mg_bid == 450


def test_the_dose_change_page_carries_the_current_version(client, patient, prescriber):
    client.force_login(prescriber)
    page = client.get(reverse("dose_change", args=[patient.pk])).content.decode()
    assert f'name="version" value="{patient.courses.get().version}"' in page


@pytest.fixture
def pending(patient, nurse):
    lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(hours=1), entries=[LabEntry("alt", "300")],
                     entered_by=nurse)
    return Recommendation.objects.get(course__patient=patient, status="pending")


@pytest.mark.parametrize("action", ["accept", "override"])
def test_a_recommendation_decided_on_a_stale_page_is_refused(client, patient, prescriber, pending, action):
    read_at = pending.course.version
    TreatmentCourse.objects.get(pk=pending.course_id).save()  # any save of the course (another session) makes the page stale
    client.force_login(prescriber)
    data = {"version": read_at, "effective_date": timezone.localdate().isoformat(), "reason": "Lab error suspected"}
    response = client.post(reverse(f"recommendation_{action}", args=[patient.pk, pending.pk]), data, follow=True)
    assert "changed by someone else" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "pending" and patient.courses.get().dose_state == "on_drug"


def test_the_recommendation_forms_carry_the_course_version(client, patient, prescriber, pending):
    client.force_login(prescriber)
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert page.count(f'name="version" value="{pending.course.version}"') == 2
