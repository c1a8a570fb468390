"""reliability.md §A7 controls and bad inputs that had no test of their own yet (issue
#11): S6 password change ends other sessions, S7 no session fixation, S8 a bulk update
cannot forge a result, S9 headers on a PHI page, S10 a generic 500, I5 XSS escaped,
I7 CSRF enforced, I10 too many fields. The rest are elsewhere (see CASES in
accounts/tests/test_case_table.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from patients.models import LabResult, Patient
from patients.services import LabEntry, lab_panel_record
from patients.tests.factories import clinic_ranges, started_patient

pytestmark = pytest.mark.django_db
PASSWORD = "x-test-password-123"


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber)


def sign_in(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_s6_a_password_change_ends_the_other_sessions(nurse, patient):
    laptop, ward_pc = sign_in(Client(), nurse), sign_in(Client(), nurse)
    nurse.set_password("a-new-long-password-456")
    nurse.save()
    assert ward_pc.get(reverse("patient_detail", args=[patient.pk])).status_code == 302  # to the sign-in page
    assert laptop.get(reverse("home")).status_code == 302


def test_s7_the_session_id_changes_at_sign_in(client, nurse):
    client.get(reverse("login"))
    client.session.save()
    before = client.session.session_key
    sign_in(client, nurse)
    assert client.session.session_key and client.session.session_key != before


def test_s8_a_bulk_update_cannot_forge_a_result(patient, nurse):
    """QuerySet.update() bypasses the model and its history: on PostgreSQL the trigger
    still refuses changing what was measured (the value is the clinical record)."""
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(hours=1), entries=[LabEntry("alt", "300")],
                     entered_by=nurse)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LabResult.objects.filter(patient=patient).update(reported_value=30, value=30)
    assert LabResult.objects.get(patient=patient).reported_value == 300


def test_s9_a_phi_page_carries_the_security_headers(client, nurse, patient, settings):
    client.force_login(nurse)
    response = client.get(reverse("patient_detail", args=[patient.pk]))
    assert "no-store" in response["Cache-Control"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_s10_an_error_is_a_generic_page_without_patient_data(nurse, patient, caplog):
    client = Client(raise_request_exception=False)
    client.force_login(nurse)
    from unittest import mock

    with mock.patch("patients.views.selectors.patient_page", side_effect=RuntimeError("boom")):
        response = client.get(reverse("patient_detail", args=[patient.pk]))
    body = response.content.decode()
    assert response.status_code == 500 and patient.last_name not in body and patient.mrn not in body
    assert "boom" not in body and "Traceback" not in body


@pytest.mark.parametrize("payload", ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>'])
def test_i5_markup_in_a_name_is_escaped(client, nurse, patient, payload):
    Patient.objects.filter(pk=patient.pk).update(last_name=payload, notes=payload)
    client.force_login(nurse)
    for url in (reverse("patient_detail", args=[patient.pk]), reverse("patient_list")):
        body = client.get(url).content.decode()
        assert payload not in body and "&lt;" in body


def test_i7_a_post_without_the_csrf_token_is_refused_and_changes_nothing(nurse, patient):
    client = Client(enforce_csrf_checks=True)
    client.force_login(nurse)
    response = client.post(reverse("lab_panel", args=[patient.pk]),
                           {"collected_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "alt_value": "300"})
    assert response.status_code == 403 and not LabResult.objects.exists()


def test_i10_too_many_fields_is_a_fast_400(client, nurse, patient, settings):
    client.force_login(nurse)
    fields = {f"f{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post(reverse("lab_panel", args=[patient.pk]), fields)
    assert response.status_code == 400 and not LabResult.objects.exists()
