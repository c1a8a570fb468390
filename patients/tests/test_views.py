"""Patient screens through the test client: scoping, roles, bad input, escaping and
pinned query counts that do not grow with the data."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import LabResult, Patient
from patients.services import LabEntry, lab_panel_record
from patients.tests.factories import PatientFactory, clinic_ranges, started_patient

pytestmark = pytest.mark.django_db

# Pinned (Zulip's assert_database_query_count): a change is a decision, seen in review.
# The same on SQLite and PostgreSQL.
PATIENT_LIST_QUERIES = 11
PATIENT_PAGE_QUERIES = 36  # + the oral program in brief (1) and its four records in the admins' trail (issue #16)


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber, mrn="A-001", first_name="Alma", last_name="Zorn")


def add_labs(patient, user, n):
    start = timezone.now() - timedelta(days=n + 1)
    for i in range(n):
        lab_panel_record(patient=patient, collected_at=start + timedelta(days=i), entered_by=user,
                         entries=[LabEntry("alt", str(20 + i)), LabEntry("ast", "25"), LabEntry("total_bilirubin", "0.5")])


def test_list_shows_only_the_users_clinics(client, patient, outsider, clinic_b):
    PatientFactory(clinic=clinic_b, mrn="B-001")
    client.force_login(outsider)
    body = client.get(reverse("patient_list")).content.decode()
    assert "B-001" in body and "A-001" not in body


def test_search_is_posted_and_finds_by_mrn_and_name(client, patient, nurse, clinic_a):
    PatientFactory(clinic=clinic_a, mrn="A-002", first_name="Other", last_name="Person")
    client.force_login(nurse)
    body = client.post(reverse("patient_list"), {"q": "zorn"}).content.decode()
    assert "A-001" in body and "A-002" not in body
    body = client.post(reverse("patient_list"), {"q": "A-002"}).content.decode()
    assert "A-002" in body and "A-001" not in body
    # A search term in the URL is ignored: names do not belong in URLs or logs.
    body = client.get(reverse("patient_list") + "?q=zorn").content.decode()
    assert "A-002" in body


def test_patient_list_query_count_does_not_grow(client, nurse, clinic_a, prescriber, django_assert_num_queries):
    clinic_ranges(clinic_a)
    client.force_login(nurse)
    started_patient(clinic_a, prescriber)
    with django_assert_num_queries(PATIENT_LIST_QUERIES):
        client.get(reverse("patient_list"))
    for _ in range(15):
        p = started_patient(clinic_a, prescriber)
        add_labs(p, nurse, 2)
    with django_assert_num_queries(PATIENT_LIST_QUERIES):  # and does not grow with the data
        response = client.get(reverse("patient_list"))
    assert response.status_code == 200


def test_patient_page_query_count_does_not_grow(client, patient, nurse, clinic_admin, django_assert_num_queries):
    client.force_login(clinic_admin)
    add_labs(patient, nurse, 1)
    with django_assert_num_queries(PATIENT_PAGE_QUERIES):
        client.get(reverse("patient_detail", args=[patient.pk]))
    start = timezone.now() - timedelta(days=200)
    for i in range(30):
        lab_panel_record(patient=patient, collected_at=start + timedelta(days=i), entered_by=nurse,
                         entries=[LabEntry("alt", "30"), LabEntry("cpk", "100"), LabEntry("heart_rate", "70")])
    with django_assert_num_queries(PATIENT_PAGE_QUERIES):  # and does not grow with the data
        response = client.get(reverse("patient_detail", args=[patient.pk]))
    assert response.status_code == 200


def test_lab_panel_form_saves_and_the_grade_appears(client, patient, nurse):
    client.force_login(nurse)
    when = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("lab_panel", args=[patient.pk]),
                           {"collected_at": when, "alt_value": "250", "alt_unit": "U/L", "alt_limit": "40",
                            "ast_value": "90", "ast_unit": "U/L"}, follow=True)
    body = response.content.decode()
    assert "ALT 250 U/L (grade 3)" in body
    assert 'title="CTCAE v5.0 grade 3">G3<' in body
    assert "6.25×" in body
    assert LabResult.objects.filter(patient=patient).count() == 2


def test_lab_panel_form_shows_field_messages_and_saves_nothing(client, patient, nurse):
    client.force_login(nurse)
    when = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("lab_panel", args=[patient.pk]),
                           {"collected_at": when, "alt_value": "-5", "alt_unit": "U/L",
                            "heart_rate_value": "900", "heart_rate_unit": "beats/min", "ast_value": "30"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "ALT cannot be negative." in body
    assert "Heart rate of 900 beats/min is not a possible value" in body
    assert not LabResult.objects.exists()


def test_free_text_is_escaped(client, nurse, clinic_a):
    p = PatientFactory(clinic=clinic_a, notes='<script>alert(1)</script>"><img src=x onerror=alert(2)>')
    client.force_login(nurse)
    body = client.get(reverse("patient_detail", args=[p.pk])).content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body


def test_create_patient_ignores_extra_fields_and_refuses_duplicate_mrn(client, nurse, clinic_a, clinic_b):
    client.force_login(nurse)
    data = {"clinic": clinic_a.pk, "mrn": "NEW-1", "first_name": "A", "last_name": "B", "date_of_birth": "1970-01-01",
            "sex": "F", "archived_at": "2020-01-01T00:00", "id": 999}
    response = client.post(reverse("patient_create"), data)
    assert response.status_code == 302
    p = Patient.objects.get(mrn="NEW-1")
    assert p.archived_at is None and p.pk != 999
    response = client.post(reverse("patient_create"), data)
    assert "Another patient in this clinic has this MRN." in response.content.decode()
    response = client.post(reverse("patient_create"), {**data, "clinic": clinic_b.pk, "mrn": "NEW-2"})
    assert "Select a valid choice" in response.content.decode()
    assert not Patient.objects.filter(mrn="NEW-2").exists()


@pytest.mark.parametrize(
    ("persona", "url_name", "status"),
    [
        ("staff", "lab_panel", 403),
        ("staff", "event_create", 403),
        ("nurse", "lab_panel", 200),
        ("nurse", "dose_change", 403),
        ("nurse", "patient_history", 403),
        ("prescriber", "dose_change", 200),
        ("clinic_admin", "patient_history", 200),
        ("staff", "patient_detail", 200),
    ],
)
def test_roles_decide_what_a_member_may_do(client, patient, request, persona, url_name, status):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse(url_name, args=[patient.pk])).status_code == status


def test_prescriber_records_a_dose_change_and_the_timeline_shows_it(client, patient, prescriber):
    client.force_login(prescriber)
    response = client.post(reverse("dose_change", args=[patient.pk]),
                           {"action": "dose", "dose_mg_bid": "450", "effective_date": timezone.localdate().isoformat(),
                            "reason": "toxicity", "toxicity": "Nausea", "toxicity_grade": "2",
                            "version": patient.courses.get().version}, follow=True)
    body = response.content.decode()
    assert "600 mg twice daily → <strong>450 mg twice daily</strong>" in body
    response = client.post(reverse("dose_change", args=[patient.pk]),
                           {"action": "dose", "dose_mg_bid": "600", "effective_date": timezone.localdate().isoformat(),
                            "reason": "prescriber_choice", "version": patient.courses.get().version})
    assert "needs a recorded reason" in response.content.decode()


def test_audit_trail_shows_who_changed_what(client, patient, nurse, clinic_admin):
    client.force_login(nurse)
    client.post(reverse("patient_edit", args=[patient.pk]),
                {"mrn": "A-001", "first_name": "Alma", "last_name": "Zorn-Berg", "date_of_birth": "1960-05-17", "sex": "F"})
    client.force_login(clinic_admin)
    body = client.get(reverse("patient_history", args=[patient.pk])).content.decode()
    assert "Zorn → Zorn-Berg" in body
    assert "Nurse" in body
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert 'data-testid="audit"' in page and "Zorn → Zorn-Berg" in page
    client.force_login(nurse)
    response = client.get(reverse("patient_detail", args=[patient.pk]))
    assert response.status_code == 200 and "Zorn-Berg" in response.content.decode()
    assert 'data-testid="audit"' not in response.content.decode()


def test_archiving_hides_the_patient_from_the_list(client, patient, clinic_admin):
    client.force_login(clinic_admin)
    client.post(reverse("patient_archive", args=[patient.pk]))
    patient.refresh_from_db()
    assert patient.archived_at is not None
    link = f'href="/patients/{patient.pk}/"'
    response = client.get(reverse("patient_list"))
    assert response.status_code == 200 and "No patients." in response.content.decode()
    assert link not in response.content.decode()
    assert link in client.get(reverse("patient_list") + "?include_archived=on").content.decode()
