"""The synthetic cohort generator used by the soak and the benchmark: set-based, seeded,
and its rows are ones the pages can show."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import Clinic, Membership, User
from monitoring.models import MonitoringItem
from patients.models import LabResult, Patient, ReferenceRange

pytestmark = pytest.mark.django_db


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("generate_cohort is PostgreSQL's")


def _fingerprint():
    with connection.cursor() as cur:
        cur.execute("SELECT md5(string_agg(value::text || analyte || grade::text, ',' ORDER BY id)) FROM patients_labresult")
        return cur.fetchone()[0]


def test_generates_the_sizes_asked_for_about_half_overdue(postgres_only, client):
    call_command("generate_cohort", clinics="50,200", results=6, seed=0.3)
    assert Patient.objects.filter(clinic__code="gen-200").count() == 200
    assert LabResult.objects.count() == 250 * 6
    items = MonitoringItem.objects.filter(clinic__code="gen-200")
    overdue = items.filter(overdue_from__isnull=False, flagged_at__isnull=False).count()
    assert items.count() == 400 and 0.3 < overdue / items.count() < 0.7
    client.force_login(User.objects.get(username="nurse.gen-200"))
    assert client.get("/").status_code == 200
    patient = Patient.objects.filter(clinic__code="gen-200").first()
    assert client.get(f"/patients/{patient.pk}/").status_code == 200


def test_the_same_seed_gives_the_same_data(postgres_only):
    call_command("generate_cohort", clinics="30", results=5, seed=0.5)
    first = _fingerprint()
    # Results are append-only (DELETE is refused by a trigger); TRUNCATE clears test data.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE patients_labresult, monitoring_monitoringitem, patients_dosechangeevent, "
                       "patients_treatmentcourse, patients_patient CASCADE")
    Membership.objects.filter(clinic__code="gen-30").delete()
    User.objects.filter(username__endswith=".gen-30").delete()
    ReferenceRange.objects.filter(clinic__code="gen-30").delete()
    Clinic.objects.filter(code="gen-30").delete()
    call_command("generate_cohort", clinics="30", results=5, seed=0.5)
    assert _fingerprint() == first


def test_refuses_to_generate_twice_into_one_database(postgres_only):
    call_command("generate_cohort", clinics="5", results=1)
    with pytest.raises(CommandError, match="exists already"):
        call_command("generate_cohort", clinics="5", results=1)
