"""Results are append-only (issue #12 item 2): a correction is an amendment or a void,
with a reason and who; the original stays visible; grade, recommendation and due dates
follow the corrected record; no page, admin or SQL statement changes a value in place."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.clinic_time import clinic_date_of
from monitoring.models import MonitoringItem
from patients.models import LabResult, Recommendation
from patients.services import LabEntry, PanelError, lab_panel_record, lab_result_amend, lab_result_void
from patients.tests.factories import clinic_ranges, started_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber)


def alt(patient, user, value, *, hours_ago=2, baseline=False):
    when = timezone.now() - timedelta(hours=hours_ago)
    (row,) = lab_panel_record(patient=patient, collected_at=when, entries=[LabEntry("alt", value)], entered_by=user,
                              is_baseline=baseline)
    return row


def url(lab):
    return reverse("lab_result", args=[lab.patient_id, lab.pk])


def test_amending_alt_300_to_30_regrades_and_supersedes_the_withhold(client, patient, nurse):
    wrong = alt(patient, nurse, "300")  # 7.5× ULN, grade 3: withhold (§4.1)
    rec = Recommendation.objects.get(course__patient=patient, status="pending")
    assert rec.action == "withhold" and rec.triggering_lab == wrong
    client.force_login(nurse)
    response = client.post(url(wrong), {"action": "amend", "value": "30", "uln": "", "reason": "transcription error"})
    assert response.status_code == 302
    wrong.refresh_from_db()
    new = LabResult.objects.get(patient=patient, analyte="alt")
    assert (wrong.status, wrong.retired_by, wrong.retired_reason) == ("amended", nurse, "transcription error")
    assert wrong.reported_value == Decimal("300") and wrong.grade == 3  # the original is kept as it was
    assert (new.amends, new.reported_value, new.grade, new.x_uln, new.entered_by) == (wrong, Decimal("30"), 0, Decimal("0.75"), nurse)
    rec.refresh_from_db()
    assert rec.status == "superseded"
    assert not Recommendation.objects.filter(course__patient=patient, status="pending").exists()
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "corrected" in page and "transcription error" in page and "<s>ALT 300 U/L</s>" in page
    chain = client.get(url(wrong)).content.decode()
    assert "<s>300 U/L</s>" in chain and "<strong>30 U/L</strong>" in chain


def test_voiding_a_result_withdraws_it_from_grading_and_recommendations(client, patient, nurse):
    wrong = alt(patient, nurse, "300")
    client.force_login(nurse)
    client.post(url(wrong), {"action": "void", "reason": "entered on the wrong patient"})
    wrong.refresh_from_db()
    assert wrong.status == "voided" and not LabResult.objects.filter(patient=patient).exists()
    assert LabResult.every.filter(patient=patient).count() == 1
    assert not Recommendation.objects.filter(course__patient=patient, status="pending").exists()


def test_amending_upwards_asks_for_the_withhold(patient, nurse):
    wrong = alt(patient, nurse, "30")
    assert not Recommendation.objects.filter(course__patient=patient).exists()
    new = lab_result_amend(lab=wrong, value="300", reason="lab's corrected report", user=nurse)
    rec = Recommendation.objects.get(course__patient=patient, status="pending")
    assert rec.action == "withhold" and rec.triggering_lab == new


@pytest.mark.parametrize("reason", ["", "   ", "typo"])
def test_a_correction_needs_a_reason_and_changes_nothing_without_one(client, patient, nurse, reason):
    wrong = alt(patient, nurse, "300")
    client.force_login(nurse)
    response = client.post(url(wrong), {"action": "amend", "value": "30", "reason": reason})
    assert response.status_code == 200 and "reason" in response.content.decode().lower()
    wrong.refresh_from_db()
    assert wrong.status == "final" and LabResult.every.count() == 1
    assert Recommendation.objects.get(course__patient=patient).status == "pending"


@pytest.mark.parametrize("value", ["abc", "-1", "1,500", "999999999"])
def test_a_bad_corrected_value_is_refused(patient, nurse, value):
    wrong = alt(patient, nurse, "300")
    with pytest.raises(PanelError):
        lab_result_amend(lab=wrong, value=value, reason="transcription error", user=nurse)
    wrong.refresh_from_db()
    assert wrong.status == "final" and LabResult.every.count() == 1


def test_a_result_is_corrected_once_a_second_correction_of_the_old_one_is_refused(client, patient, nurse, prescriber):
    wrong = alt(patient, nurse, "300")
    lab_result_amend(lab=wrong, value="30", reason="transcription error", user=nurse)
    with pytest.raises(PanelError, match="already corrected"):
        lab_result_void(lab=wrong, reason="stale page, second session", user=prescriber)
    client.force_login(prescriber)
    page = client.get(url(wrong)).content.decode()
    assert "void-form" not in page and "no longer in force" in page


def test_correcting_a_baseline_regrades_the_results_graded_against_it(patient, nurse):
    """§8.1: an abnormal baseline changes the grade of later results."""
    base = alt(patient, nurse, "100", hours_ago=24 * 20, baseline=True)
    later = alt(patient, nurse, "200")
    graded_on_100 = later.grade
    lab_result_amend(lab=base, value="20", reason="baseline typed with an extra zero", user=nurse)
    later.refresh_from_db()
    assert (graded_on_100, later.grade) == (1, 2)  # 2× baseline, then 5× ULN (>3–5×: G2) on a normal one


def test_due_dates_follow_a_voided_result(patient, nurse, django_capture_on_commit_callbacks):
    collected = timezone.now() - timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        rows = lab_panel_record(patient=patient, collected_at=collected, entered_by=nurse,
                                entries=[LabEntry("alt", "30"), LabEntry("ast", "30"), LabEntry("total_bilirubin", "0.5")])
    done = MonitoringItem.objects.get(course__patient=patient, requirement__code="lft")
    # The clinic's date of the collection (two hours ago is yesterday just after midnight).
    assert done.last_done == clinic_date_of(patient.clinic, collected)
    with django_capture_on_commit_callbacks(execute=True):
        lab_result_void(lab=rows[0], reason="haemolysed sample", user=nurse)
    after = MonitoringItem.objects.get(course__patient=patient, requirement__code="lft")
    assert after.last_done is None and after.due_date < done.due_date


@pytest.mark.parametrize(("who", "get", "post"), [
    ("nurse", 200, 302), ("prescriber", 200, 302), ("staff", 403, 403), ("clinic_admin", 200, 302),
    ("outsider", 404, 404), (None, 302, 302),
])
def test_who_may_see_and_correct_a_result(client, request, patient, nurse, who, get, post):
    wrong = alt(patient, nurse, "300")
    if who:
        client.force_login(request.getfixturevalue(who))
    assert client.get(url(wrong)).status_code == get
    response = client.post(url(wrong), {"action": "void", "reason": "entered on the wrong patient"})
    assert response.status_code == post
    wrong.refresh_from_db()
    assert wrong.status == ("voided" if post == 302 and who else "final")


def test_the_admin_cannot_change_a_result(client, patient, nurse, clinic_admin):
    wrong = alt(patient, nurse, "300")
    from django.contrib.auth.models import Permission

    clinic_admin.is_staff = True
    clinic_admin.save()
    clinic_admin.user_permissions.add(*Permission.objects.all())  # every model permission: the gate is the admin's
    client.force_login(clinic_admin)
    change = reverse("admin:patients_labresult_change", args=[wrong.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="value"' not in page.content.decode()
    client.post(change, {"value": "30", "reported_value": "30", "entered_by": clinic_admin.pk, "grade": "0"})
    assert client.post(reverse("admin:patients_labresult_delete", args=[wrong.pk]), {"post": "yes"}).status_code == 403
    wrong.refresh_from_db()
    assert (wrong.reported_value, wrong.value, wrong.grade, wrong.entered_by, wrong.status) == (
        Decimal("300"), Decimal("300"), 3, nurse, "final")


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")


@pytest.mark.parametrize("statement", [
    "UPDATE patients_labresult SET reported_value = 30, value = 30 WHERE id = %s",
    "UPDATE patients_labresult SET entered_by_id = NULL WHERE id = %s",
    "UPDATE patients_labresult SET collected_at = collected_at - interval '1 day' WHERE id = %s",
    "DELETE FROM patients_labresult WHERE id = %s",
])
def test_the_database_refuses_an_in_place_change_whatever_the_door(postgres_only, patient, nurse, statement):
    wrong = alt(patient, nurse, "300")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [wrong.pk])
    wrong.refresh_from_db()
    assert wrong.reported_value == Decimal("300")


def test_the_database_allows_the_status_change_of_a_correction_once(postgres_only, patient, nurse):
    wrong = alt(patient, nurse, "300")
    lab_result_void(lab=wrong, reason="entered on the wrong patient", user=nurse)
    with pytest.raises(DatabaseError, match="already voided"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE patients_labresult SET status = 'final' WHERE id = %s", [wrong.pk])


def test_the_admin_lists_voided_results_too(client, patient, nurse, clinic_admin):
    from django.contrib.auth.models import Permission

    wrong = alt(patient, nurse, "300")
    lab_result_void(lab=wrong, reason="entered on the wrong patient", user=nurse)
    clinic_admin.is_staff = True
    clinic_admin.save()
    clinic_admin.user_permissions.add(*Permission.objects.all())
    client.force_login(clinic_admin)
    page = client.get(reverse("admin:patients_labresult_change", args=[wrong.pk]))
    assert page.status_code == 200 and "Voided" in page.content.decode()


def test_the_admin_refuses_the_dates_the_pages_refuse(client, patient, clinic_admin):
    """Fresh-eyes finding: a course start of 1900-01-01 (before the patient's birth) was
    accepted in the admin and made the worklist say 9791 days overdue."""
    from django.contrib.auth.models import Permission

    clinic_admin.is_staff = True
    clinic_admin.save()
    clinic_admin.user_permissions.add(*Permission.objects.all())
    client.force_login(clinic_admin)
    course = patient.courses.get()
    started = course.start_date
    url = reverse("admin:patients_treatmentcourse_change", args=[course.pk])
    response = client.post(url, {"patient": patient.pk, "drug": course.drug, "start_date": "01/01/1900",
                                 "end_reason": "", "notes": ""})
    body = response.content.decode()
    assert response.status_code == 200 and "date of birth (17 May 1960)" in body  # the factory's birth date
    course.refresh_from_db()
    assert course.start_date == started
