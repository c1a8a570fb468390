"""Issue 8: two panels saved for the same patient and time at once ended in a 500. Both
pass the duplicate check, then one of them meets the unique constraint
(lab_unique_per_time): the loser gets a message and none of its rows are saved."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from patients import services
from patients.models import LabResult
from patients.services import LabEntry, PanelError, lab_panel_record
from patients.tests.factories import clinic_ranges, started_patient


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber, mrn="A-001")


class _Transaction:
    """Stands in for django.db.transaction in patients.services: runs `before_save` when
    the service opens its saving block, i.e. after its duplicate check."""

    def __init__(self, before_save):
        self.before_save = before_save

    def __getattr__(self, name):
        return getattr(transaction, name)

    def atomic(self, *args, **kwargs):
        self.before_save()
        return transaction.atomic(*args, **kwargs)


@pytest.mark.django_db
def test_a_panel_saved_between_the_check_and_the_save_gives_a_message(client, monkeypatch, patient, nurse, prescriber):
    when = timezone.localtime().replace(second=0, microsecond=0) - timedelta(hours=1)
    collected = when.strftime("%Y-%m-%dT%H:%M")

    def another_nurse_saves_first():
        monkeypatch.setattr(services, "transaction", transaction)  # only once
        lab_panel_record(patient=patient, collected_at=when, entries=[LabEntry("alt", "31")], entered_by=prescriber)

    monkeypatch.setattr(services, "transaction", _Transaction(another_nurse_saves_first))
    client.force_login(nurse)
    response = client.post(reverse("lab_panel", args=[patient.pk]),
                           {"collected_at": collected, "alt_value": "30", "ast_value": "25"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "already recorded for this patient" in " ".join(form.errors["alt_value"])
    assert "nothing of this one was saved" in " ".join(form.non_field_errors())
    # Nothing half-saved: the other nurse's ALT only, no AST from this panel.
    assert list(LabResult.objects.filter(patient=patient).values_list("analyte", "reported_value")) == [("alt", 31)]


@pytest.mark.django_db(transaction=True)
def test_two_panels_for_the_same_time_at_once_on_postgresql(monkeypatch, clinic_a, prescriber, nurse):
    """Two threads, two connections: both pass the duplicate check before either saves."""
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL=postgres://… (two connections at once)")
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber, mrn="A-002")
    when = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    both_checked = threading.Barrier(2, timeout=20)
    monkeypatch.setattr(services, "transaction", _Transaction(both_checked.wait))
    outcomes: dict[str, object] = {}

    def save(name, alt):
        try:
            lab_panel_record(patient=patient, collected_at=when, entered_by=nurse,
                             entries=[LabEntry("alt", alt), LabEntry("ast", "25")])
            outcomes[name] = "saved"
        except PanelError as exc:
            outcomes[name] = exc.errors
        except Exception as exc:  # noqa: BLE001 - the test reports any other failure
            outcomes[name] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(name, alt)) for name, alt in (("first", "30"), ("second", "40"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(map(str, outcomes.values())).count("saved") == 1, outcomes
    (refused,) = [v for v in outcomes.values() if v != "saved"]
    assert isinstance(refused, dict) and "already recorded" in refused["alt_value"], refused
    assert "nothing of this one was saved" in refused["__all__"]
    rows = list(LabResult.objects.filter(patient=patient).values_list("analyte", flat=True))
    assert sorted(rows) == ["alt", "ast"]  # one whole panel, nothing of the other
