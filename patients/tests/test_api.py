"""The REST API (issue #15): keys that a clinic admin issues, names, expires and revokes;
every endpoint scoped to the key's clinic (404 across clinics, 403 for the wrong role,
401 without a valid key); results sent through the one intake path; the OpenAPI schema at
a stable URL, and schemathesis over it with no server error."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import schemathesis
import time_machine
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, given, settings

from accounts.api_auth import token_issue
from accounts.models import ApiToken, AuditEvent, Membership
from accounts.tests.factories import MembershipFactory
from monitoring.services import patient_schedule_recompute
from patients.models import LabImport, LabResult
from patients.services import LabEntry, lab_panel_record
from patients.tests.factories import PatientFactory, ReferenceRangeFactory, TreatmentCourseFactory
from protocols.dosing import DoseState

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("Europe/London"))


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def setup_clinic(clinic, user):
    for analyte, uln in (("alt", "40"), ("ast", "40"), ("total_bilirubin", "1.2"), ("creatinine", "1.1")):
        ReferenceRangeFactory(clinic=clinic, analyte=analyte, uln=Decimal(uln))
    p = PatientFactory(clinic=clinic, mrn="A100")
    TreatmentCourseFactory(patient=p, dose_state=DoseState.ON_DRUG, dose_mg_bid=600, start_date=date(2026, 9, 1))
    lab_panel_record(patient=p, collected_at=NOW - timedelta(days=3), entries=[LabEntry("alt", "300")], entered_by=user)
    patient_schedule_recompute(patient_id=p.pk)
    return p


@pytest.fixture
def world(clinic_a, clinic_b, nurse, outsider, clinic_admin):
    a = setup_clinic(clinic_a, nurse)
    b = setup_clinic(clinic_b, outsider)
    _, key = token_issue(clinic=clinic_a, user=nurse, name="LIS", days=30, issued_by=clinic_admin)
    return {"a": a, "b": b, "key": key}


def auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


READS = ["api_patients", "api_labs", "api_recommendations", "api_monitoring"]


@pytest.mark.parametrize("name", READS)
def test_reads_show_the_keys_clinic_only(client, world, name):
    response = client.get(reverse(name), **auth(world["key"]))
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert rows, name
    mrns = {r.get("mrn") or r.get("patient_mrn") for r in rows}
    assert mrns == {"A100"}
    ids = {r.get("patient", r["id"]) for r in rows}
    assert world["b"].pk not in ids or name == "api_labs"


def test_another_clinics_objects_are_404(client, world):
    b_lab = LabResult.objects.filter(patient=world["b"]).first()
    assert client.get(reverse("api_patient", args=[world["b"].pk]), **auth(world["key"])).status_code == 404
    assert client.get(reverse("api_lab", args=[b_lab.pk]), **auth(world["key"])).status_code == 404
    assert client.get(reverse("api_patient", args=[world["a"].pk]), **auth(world["key"])).status_code == 200
    body = client.get(reverse("api_labs") + f"?patient={world['b'].pk}", **auth(world["key"])).json()
    assert body["count"] == 0


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Bearer", "Token abc", "Bearer a b"])
def test_without_a_valid_key_401(client, world, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    for name in READS:
        response = client.get(reverse(name), **extra)
        assert response.status_code in (401, 403), (name, response.status_code)
        assert response.status_code == 401 or header and header.startswith("Token")


def test_expired_revoked_and_former_member_keys_are_refused(client, world, clinic_a, nurse, clinic_admin):
    token = ApiToken.objects.get()
    with time_machine.travel(NOW + timedelta(days=31), tick=False):
        assert client.get(reverse("api_patients"), **auth(world["key"])).status_code == 401
    client.force_login(clinic_admin)
    client.post(reverse("access_key_revoke", args=[token.pk]))
    client.logout()
    assert client.get(reverse("api_patients"), **auth(world["key"])).status_code == 401
    _, key = token_issue(clinic=clinic_a, user=nurse, name="again", days=30, issued_by=clinic_admin)
    assert client.get(reverse("api_patients"), **auth(key)).status_code == 200
    Membership.objects.filter(user=nurse, clinic=clinic_a).delete()
    nurse.__dict__.pop("_clinic_ids", None)
    assert client.get(reverse("api_patients"), **auth(key)).status_code == 401


def test_a_staff_key_reads_but_cannot_send_results(client, world, clinic_a, clinic_admin):
    staff = MembershipFactory(clinic=clinic_a, role="staff").user
    _, key = token_issue(clinic=clinic_a, user=staff, name="reports", days=30, issued_by=clinic_admin)
    assert client.get(reverse("api_patients"), **auth(key)).status_code == 200
    body = {"results": [{"mrn": "A100", "test": "1742-6", "value": "35", "unit": "U/L",
                         "collected_at": "2026-11-21T09:00:00+00:00"}]}
    response = client.post(reverse("api_lab_intake"), body, content_type="application/json", **auth(key))
    assert response.status_code == 403 and not LabImport.objects.exists()


def test_results_sent_go_through_the_intake_path(client, world):
    body = {"results": [
        {"mrn": "A100", "test": "1742-6", "value": "35", "unit": "U/L", "collected_at": "2026-11-21T09:00:00+00:00"},
        {"mrn": "A100", "test": "14631-6", "value": "61.5", "unit": "umol/L", "reference_range": "3.4-20.5",
         "collected_at": "2026-11-21T09:00:00+00:00"},
        {"mrn": "B-none", "test": "1742-6", "value": "35", "unit": "U/L", "collected_at": "2026-11-21T09:00:00+00:00"},
        {"mrn": "A100", "test": "1742-6", "value": "<0.1", "unit": "mmol/h", "collected_at": "2026-11-21T10:00:00+00:00"},
    ]}
    dry = client.post(reverse("api_lab_intake"), {**body, "dry_run": True}, content_type="application/json",
                      **auth(world["key"]))
    assert dry.status_code == 200 and dry.json()["counts"] == {"create": 2, "duplicate": 0, "amend": 0, "refuse": 2}
    assert LabResult.objects.filter(patient=world["a"]).count() == 1  # the dry run saved nothing
    response = client.post(reverse("api_lab_intake"), body, content_type="application/json", **auth(world["key"]))
    assert response.status_code == 201
    outcomes = response.json()["outcomes"]
    assert [(o["outcome"], o["field"]) for o in outcomes] == [("create", ""), ("create", ""), ("refuse", "mrn"),
                                                              ("refuse", "unit")]
    bili = LabResult.objects.get(pk=outcomes[1]["result_ids"][0])
    assert bili.x_uln == Decimal("3.000") and bili.source == "api" and bili.lab_import.kind == "api"
    again = client.post(reverse("api_lab_intake"), body, content_type="application/json", **auth(world["key"]))
    assert again.status_code == 200 and again.json()["counts"]["duplicate"] == 2
    assert AuditEvent.objects.filter(what__startswith="lab results sent (API)", action="change").exists()


GOOD_ROW = {"mrn": "A100", "test": "1742-6", "value": "35", "unit": "U/L", "collected_at": "2026-11-21T09:00:00+00:00"}


@pytest.mark.parametrize("body", [{}, {"results": []}, {"results": [{"mrn": "A100"}]}, {"results": "x"}, [1, 2],
                                  {"results": [GOOD_ROW], "dryRun": True},
                                  {"results": [{**GOOD_ROW, "units": "U/L"}]},
                                  {"results": [GOOD_ROW], "dry_run": "maybe"}])
def test_malformed_bodies_are_400_and_change_nothing(client, world, body):
    response = client.post(reverse("api_lab_intake"), body, content_type="application/json", **auth(world["key"]))
    assert response.status_code == 400 and not LabImport.objects.exists()


def test_fhir_bundle_posted(client, world, clinic_a):
    PatientFactory(clinic=clinic_a, mrn="A101")
    content = (DATA / "fhir_bundle_good.json").read_bytes()
    dry = client.post(reverse("api_fhir_bundle") + "?dry_run=true", content, content_type="application/fhir+json",
                      **auth(world["key"]))
    assert dry.status_code == 200 and dry.json()["counts"]["create"] == 4
    done = client.post(reverse("api_fhir_bundle"), content, content_type="application/fhir+json", **auth(world["key"]))
    assert done.status_code == 201 and LabResult.objects.filter(source="fhir").count() == 4
    bad = client.post(reverse("api_fhir_bundle"), b"{not json", content_type="application/json", **auth(world["key"]))
    assert bad.status_code == 400 and "not a FHIR JSON" in bad.content.decode()


def test_the_schema_is_at_a_stable_url(client):
    response = client.get(reverse("api_schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert reverse("api_schema") == "/api/schema/"
    text = response.content.decode()
    assert "/api/v1/lab-results/intake/" in text and "bearerKey" in text


def test_keys_page_issue_show_once_and_revoke(client, clinic_a, clinic_b, clinic_admin, nurse, outsider):
    client.force_login(clinic_admin)
    response = client.post(reverse("access_keys"), {"clinic": clinic_a.pk, "user": nurse.pk, "name": "LIS", "days": 90})
    page = response.content.decode()
    assert response.status_code == 200 and "not shown again" in page
    token = ApiToken.objects.get()
    assert token.expires_at == NOW + timedelta(days=90) and token.prefix in page
    assert client.get(reverse("access_keys")).content.decode().count("not shown again") == 0
    # Not for a user of another clinic, not for another clinic, not for longer than a year.
    for data in ({"clinic": clinic_a.pk, "user": outsider.pk, "name": "x", "days": 9},
                 {"clinic": clinic_b.pk, "user": nurse.pk, "name": "x", "days": 9},
                 {"clinic": clinic_a.pk, "user": nurse.pk, "name": "x", "days": 400}):
        assert "not shown again" not in client.post(reverse("access_keys"), data).content.decode()
    assert ApiToken.objects.count() == 1
    client.force_login(nurse)
    assert client.get(reverse("access_keys")).status_code == 403
    assert client.post(reverse("access_key_revoke", args=[token.pk])).status_code == 403
    b_admin = MembershipFactory(clinic=clinic_b, role="admin").user
    client.force_login(b_admin)
    assert client.post(reverse("access_key_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


# --- schemathesis over the whole schema ----------------------------------------------------


def test_no_server_error_anywhere_in_the_schema(world):
    """schemathesis generates requests for every operation of the schema (its pytest
    plugin does not run under pytest 9, so the operations' strategies are driven here)."""
    # As Django's test client does: a request's end must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        _drive_the_schema(world)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _drive_the_schema(world):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    headers = {"Authorization": f"Bearer {world['key']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])

        run()


def test_dry_run_must_be_said_exactly(client, world):
    url = reverse("api_lab_intake")
    response = client.post(url + "?dry_run=true", {"results": [GOOD_ROW]}, content_type="application/json",
                           **auth(world["key"]))
    assert response.status_code == 400 and not LabImport.objects.exists()
    content = (DATA / "fhir_bundle_good.json").read_bytes()
    for query in ("dry_run=on", "dry_run=maybe", "dryRun=true", "DRY_RUN=true", "dry_run=", "dry_run=true&dry_run=false"):
        response = client.post(reverse("api_fhir_bundle") + f"?{query}", content,
                                content_type="application/fhir+json", **auth(world["key"]))
        assert response.status_code == 400
    assert not LabResult.objects.filter(source="fhir").exists()
    assert client.get(reverse("api_monitoring") + "?overdue=maybe", **auth(world["key"])).status_code == 400


def test_an_api_dry_run_cannot_be_saved_from_the_pages(client, world, nurse):
    response = client.post(reverse("api_lab_intake"), {"results": [GOOD_ROW], "dry_run": True},
                           content_type="application/json", **auth(world["key"]))
    imp = LabImport.objects.get(pk=response.json()["import_id"])
    assert imp.state == LabImport.State.DRY_RUN
    assert response.json()["outcomes"][0]["value"] == "35 U/L" and response.json()["outcomes"][0]["mrn"] == "A100"
    client.force_login(nurse)
    client.post(reverse("import_confirm", args=[imp.pk]))
    assert LabResult.objects.filter(patient=world["a"]).count() == 1  # only the one from the fixture


def test_an_unknown_api_path_answers_json(client, world):
    response = client.get("/api/v1/nothing-here/", **auth(world["key"]))
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
