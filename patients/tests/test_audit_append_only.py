"""The audit trail is append-only for the app's database role (HIPAA 164.312(b),
reliability.md S8): UPDATE and DELETE on any history table are refused by PostgreSQL."""

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _historical_tables():
    return sorted(m._meta.db_table for m in apps.get_models() if m.__name__.startswith("Historical"))


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")


def test_every_history_table_has_the_append_only_trigger(postgres_only):
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                       "WHERE t.tgname = 'audit_rows_are_append_only'")
        guarded = {row[0] for row in cursor.fetchall()}
    missing = set(_historical_tables()) - guarded
    assert not missing, f"history tables without the append-only trigger (add a migration): {missing}"


def test_history_rows_cannot_be_updated_or_deleted(postgres_only, clinic_a):
    patient = PatientFactory(clinic=clinic_a, notes="first")
    patient.notes = "second"
    patient.save()
    history = patient.history.model
    assert history.objects.filter(id=patient.pk).count() == 2  # inserts still work
    for change in (lambda: history.objects.filter(id=patient.pk).update(notes="forged"),
                   lambda: history.objects.filter(id=patient.pk).delete()):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            change()
    assert sorted(history.objects.filter(id=patient.pk).values_list("notes", flat=True)) == ["first", "second"]
