"""Break-glass access to another clinic's patient (HIPAA 164.312(a)(2)(ii); reliability.md
S16), through the pages: a typed reason is required; the grant opens that one patient's
page, read-only, for BREAK_GLASS_HOURS; it is on the clinic's trail as high severity, in
the log, and in an email to the clinic's admins; after expiry the page is a 404 again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, EmergencyAccess
from accounts.tests.factories import MembershipFactory
from accounts.tests.test_access import app_patterns
from patients.models import LabResult
from patients.services import LabEntry, lab_panel_record
from patients.tests.factories import PatientFactory, clinic_ranges, started_patient

pytestmark = pytest.mark.django_db

REASON = "Admitted to our ward unconscious; we need her current alectinib dose and last liver results."


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber, mrn="A-EMERG-1")
    lab_panel_record(patient=patient, collected_at=timezone.now(), entries=[LabEntry("alt", "30")], entered_by=prescriber)
    return patient


@pytest.fixture
def neighbour(clinic_a, prescriber, patient):
    """Another patient of the same clinic: a grant for `patient` must not reach them."""
    return started_patient(clinic_a, prescriber, mrn="A-OTHER-2")


def request_access(client, user, patient, *, reason=REASON, clinic="Clinic A", mrn=None):
    client.force_login(user)
    return client.post(reverse("emergency_access"), {"mrn": mrn or patient.mrn, "clinic": clinic, "reason": reason})


def detail(patient):
    return reverse("patient_detail", args=[patient.pk])


def test_the_404_for_another_clinics_patient_offers_emergency_access(client, patient, outsider):
    client.force_login(outsider)
    response = client.get(detail(patient))
    assert response.status_code == 404
    assert reverse("emergency_access") in response.content.decode()
    assert client.get(reverse("emergency_access")).status_code == 200


@pytest.mark.parametrize("reason", ["", "   ", "emergency", "need it now please"])
def test_a_reason_of_at_least_a_sentence_is_required(client, patient, outsider, clinic_admin, reason):
    response = request_access(client, outsider, patient, reason=reason)
    assert response.status_code == 200
    assert "at least a sentence" in response.content.decode() or "This field is required" in response.content.decode()
    assert not EmergencyAccess.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.BREAK_GLASS).exists()
    assert mail.outbox == []
    assert client.get(detail(patient)).status_code == 404


def test_the_grant_opens_that_one_patients_page_with_the_red_banner(client, patient, outsider):
    response = request_access(client, outsider, patient)
    assert response.status_code == 302 and response["Location"] == detail(patient)
    assert patient.mrn not in response["Location"]  # names and MRNs never in a URL (S11)
    grant = EmergencyAccess.objects.get()
    assert (grant.user, grant.clinic_id, grant.patient_id) == (outsider, patient.clinic_id, patient.pk)
    assert grant.expires_at - grant.granted_at == timedelta(hours=4)

    page = client.get(detail(patient))
    assert page.status_code == 200
    body = page.content.decode()
    until = timezone.localtime(grant.expires_at, ZoneInfo(patient.clinic.timezone))
    assert f"Emergency access until {until:%H:%M} — every view is recorded" in body
    assert patient.mrn in body
    # Read-only: no write action is offered.
    for name in ("lab_panel", "event_create", "patient_edit", "dose_change", "record_test", "patient_archive"):
        assert reverse(name, args=[patient.pk]) not in body, name


def test_the_grant_reaches_no_other_page_no_write_and_no_other_patient(client, patient, neighbour, outsider,
                                                                        outsider_prescriber):
    request_access(client, outsider, patient)
    assert client.get(detail(patient)).status_code == 200
    # Another patient of the same clinic.
    assert client.get(detail(neighbour)).status_code == 404
    # Every other page of the patient, and every write, including a POST to the page itself.
    lab = LabResult.objects.filter(patient=patient).first()
    checked = 0
    for name, _, kws in app_patterns():
        if "patient_pk" not in kws or not set(kws) <= {"patient_pk", "lab_pk"}:
            continue
        url = reverse(name, kwargs={"patient_pk": patient.pk, **({"lab_pk": lab.pk} if "lab_pk" in kws else {})})
        for method in ("get", "post"):
            if name == "patient_detail" and method == "get":
                continue
            response = getattr(client, method)(url, {"notes": "forged", "alt_value": "999"})
            if method == "get" and response.status_code == 405:  # POST-only: every GET alike
                continue
            assert response.status_code == 404, (method, name, response.status_code)
            checked += 1
    assert checked >= 20
    assert LabResult.objects.filter(patient=patient).count() == 1
    # Lists and dashboards stay the user's own clinics.
    for name in ("patient_list", "home", "cohort"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert patient.mrn not in response.content.decode(), name
    response = client.post(reverse("patient_list"), {"q": patient.mrn})
    assert response.status_code == 200 and "No patients match." in response.content.decode()
    assert detail(patient) not in response.content.decode()
    # The grant is the user's own: a colleague of clinic B still gets the 404.
    client.force_login(outsider_prescriber)
    assert client.get(detail(patient)).status_code == 404


def test_the_grant_is_on_the_trail_in_the_log_and_emailed_to_the_clinics_admins(
        client, patient, outsider, nurse, clinic_admin, caplog, django_capture_on_commit_callbacks):
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        request_access(client, outsider, patient, clinic="a")  # the clinic's code works as well as its name
    grant = EmergencyAccess.objects.get()

    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.BREAK_GLASS)
    assert (event.user, event.clinic_id, event.patient_id) == (outsider, patient.clinic_id, patient.pk)
    assert patient.mrn in event.what and REASON[:40] in event.what
    assert event.get_action_display() == "used emergency access to"
    assert any(r.levelno >= logging.WARNING and "emergency access granted" in r.getMessage()
               and str(outsider.pk) in r.getMessage() for r in caplog.records)
    assert not any(patient.mrn in r.getMessage() or REASON in r.getMessage() for r in caplog.records)  # ids only

    (message,) = mail.outbox
    assert message.to == [clinic_admin.email]  # the clinic's admins only: not its nurse, not clinic B
    until = timezone.localtime(grant.expires_at, ZoneInfo(patient.clinic.timezone))
    for text in (message.subject, message.body):
        assert patient.mrn in text and "Outsider" in text and f"{until:%H:%M}" in text
    assert REASON in message.body and "outsider" in message.body
    assert REASON in message.alternatives[0][0]

    # Every read under the grant is a high-severity row too, and the admin sees them.
    client.get(detail(patient))
    views = AuditEvent.objects.filter(action=AuditEvent.Action.BREAK_GLASS, user=outsider, method="GET")
    assert views.count() == 1 and views.get().clinic_id == patient.clinic_id
    client.force_login(clinic_admin)
    trail = client.get(reverse("audit_trail") + "?action=break_glass").content.decode().split("<tbody>")[1]
    assert trail.count("used emergency access to") == 2 and 'class="table-danger"' in trail


def test_the_grant_ends_when_its_time_is_up(client, patient, outsider):
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        request_access(client, outsider, patient)
        assert client.get(detail(patient)).status_code == 200
        traveller.shift(timedelta(hours=3, minutes=59))
        client.force_login(outsider)  # the idle timeout has long ended the session
        assert client.get(detail(patient)).status_code == 200
        traveller.shift(timedelta(minutes=1))
        client.force_login(outsider)
        assert client.get(detail(patient)).status_code == 404
        response = client.get(reverse("emergency_access"))
        assert response.status_code == 200
        assert reverse("patient_detail", args=[patient.pk]) not in response.content.decode()


def test_the_user_can_end_the_grant_early(client, patient, outsider):
    request_access(client, outsider, patient)
    grant = EmergencyAccess.objects.get()
    response = client.post(reverse("emergency_access"), {"end": grant.pk})
    assert response.status_code == 302
    assert client.get(detail(patient)).status_code == 404
    grant.refresh_from_db()
    assert grant.ended_at is not None and grant.reason == REASON
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CHANGE, patient_id=patient.pk, user=outsider,
                                     what__contains="ended early").exists()


def test_an_unknown_mrn_grants_nothing_and_the_attempt_is_on_the_clinics_trail(client, patient, outsider):
    response = request_access(client, outsider, patient, mrn="A-NOPE")
    assert response.status_code == 200 and "has no patient with this MRN" in response.content.decode()
    assert not EmergencyAccess.objects.exists()
    (event,) = AuditEvent.objects.filter(user=outsider, action=AuditEvent.Action.REFUSED)
    assert event.clinic_id == patient.clinic_id and "A-NOPE" in event.what


def test_an_unknown_clinic_or_the_users_own_clinic_grants_nothing(client, patient, outsider, nurse, clinic_b):
    PatientFactory(clinic=clinic_b, mrn="B-7")
    assert "No clinic has this name or code" in request_access(client, outsider, patient, clinic="Nowhere").content.decode()
    assert "You are a member of Clinic A" in request_access(client, nurse, patient).content.decode()
    assert not EmergencyAccess.objects.exists()


def test_a_second_request_while_one_is_active_makes_no_second_grant(client, patient, outsider, clinic_admin,
                                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request_access(client, outsider, patient)
        response = request_access(client, outsider, patient)
    assert "You already have emergency access to this patient" in response.content.decode()
    assert EmergencyAccess.objects.count() == 1 and len(mail.outbox) == 1


def test_staff_and_clinic_admins_cannot_break_glass(client, patient, clinic_b):
    for role in ("staff", "admin"):
        user = MembershipFactory(user__username=f"b-{role}", clinic=clinic_b, role=role).user
        assert request_access(client, user, patient).status_code == 403, role
    assert not EmergencyAccess.objects.exists()


def test_grant_rows_are_append_only_except_ending_early(patient, outsider):
    now = timezone.now()
    grant = EmergencyAccess.objects.create(user=outsider, clinic=patient.clinic, patient_id=patient.pk, reason=REASON,
                                           granted_at=now, expires_at=now + timedelta(hours=4))
    grant.reason = "changed afterwards"
    with pytest.raises(PermissionError, match="append-only"):
        grant.save()
    with pytest.raises(PermissionError, match="append-only"):
        grant.delete()
    if connection.vendor != "postgresql":
        return  # the trigger is PostgreSQL's
    for change in (lambda: EmergencyAccess.objects.filter(pk=grant.pk).update(reason="forged"),
                   lambda: EmergencyAccess.objects.filter(pk=grant.pk).update(expires_at=now + timedelta(days=9)),
                   lambda: EmergencyAccess.objects.filter(pk=grant.pk).delete()):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            change()
    assert EmergencyAccess.objects.filter(pk=grant.pk).update(ended_at=now) == 1
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        EmergencyAccess.objects.filter(pk=grant.pk).update(ended_at=None)
