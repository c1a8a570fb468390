"""The clinic's monitoring plan: a clinic admin edits a default requirement (the clinic's
own copy replaces it, with its history) or adds one; the schedule in force on the date of
the last test counts; items and their follow-ups survive an edit or a retirement; a stale
edit is refused. The scenario is in monitoring/tests/scenario.py."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse

from monitoring import services
from monitoring.models import MonitoringItem, Requirement, RequirementVersion
from monitoring.tests.scenario import TODAY, items, lft

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def test_clinic_policy_interval_applies_and_edits_keep_history(course, nurse, clinic_a, clinic_admin, client):
    client.force_login(clinic_admin)
    vitals = Requirement.objects.get(clinic__isnull=True, code="vitals")
    response = client.post(reverse("requirement_edit", args=[clinic_a.pk, vitals.pk]),
                           {"label": "Heart rate and blood pressure", "analytes": ["heart_rate", "systolic_bp"],
                            "first_every": "14", "first_unit": "days", "first_months": "", "then_unit": "months",
                            "note": "clinic policy: fortnightly", "based_on": vitals.versions.get().pk})
    assert response.status_code == 302
    own = Requirement.objects.get(clinic=clinic_a, code="vitals")
    assert [v.schedule for v in own.versions.all()][-1] == {"phases": [{"months": None, "every_days": 14}]}
    assert own.versions.count() == 2  # the default's history plus the clinic's edit
    # Introduced today: due 14 days from today, nobody overdue retroactively.
    assert items(course)["vitals"].due_date == date(2026, 3, 6)
    assert Requirement.objects.get(clinic__isnull=True, code="vitals").versions.count() == 1  # default untouched


def test_schedule_in_force_on_the_last_test_date_is_used(course, nurse, clinic_a):
    lft_req = Requirement.objects.get(clinic__isnull=True, code="lft")
    own = Requirement.objects.create(clinic=clinic_a, code="lft", label="LFT", analytes=lft_req.analytes, source="x")
    RequirementVersion.objects.create(requirement=own, schedule={"phases": [{"months": None, "every_days": 14}]},
                                      effective_from=date(2000, 1, 1))
    RequirementVersion.objects.create(requirement=own, schedule={"phases": [{"months": None, "every_days": 7}]},
                                      effective_from=date(2026, 2, 10))
    lft(course, nurse, date(2026, 2, 2))  # before the change: 14 days
    assert items(course)["lft"].due_date == date(2026, 2, 16)
    lft(course, nurse, date(2026, 2, 12))  # after the change: 7 days
    assert items(course)["lft"].due_date == date(2026, 2, 19)


def test_a_clinic_can_add_a_requirement_of_its_own(course, clinic_a, clinic_admin, client, nurse):
    client.force_login(clinic_admin)
    client.post(reverse("requirement_create", args=[clinic_a.pk]),
                {"code": "ecg", "label": "ECG", "first_every": "1", "first_unit": "months", "then_unit": "months"})
    got = items(course)
    assert got["ecg"].due_date == date(2026, 3, 20)  # monthly from the day it was introduced
    client.force_login(nurse)
    client.post(reverse("record_test", args=[course.patient_id]), {"requirement_code": "ecg", "performed_on": "2026-02-20"})
    got = items(course)
    assert got["ecg"].last_done == date(2026, 2, 20) and got["ecg"].due_date == date(2026, 3, 20)


def test_a_follow_up_survives_a_change_of_the_monitoring_plan(course, nurse, clinic_a, clinic_admin, client):
    """Issue #12 item 5: editing a requirement (the clinic's own copy replaces the default)
    deleted the item and its 'test ordered' follow-up, and the item came back in the next
    digest. The item is carried over to the copy, with its snooze and its follow-ups."""
    item = items(course)["lft"]
    assert item in MonitoringItem.objects.overdue(TODAY)
    services.follow_up_record(item=item, user=nurse, kind="ordered", note="LFTs ordered at the GP",
                              until=TODAY + timedelta(days=3), today=TODAY)
    lft_req = Requirement.objects.get(clinic__isnull=True, code="lft")
    client.force_login(clinic_admin)
    response = client.post(reverse("requirement_edit", args=[clinic_a.pk, lft_req.pk]), {
        "label": "Liver tests", "analytes": ["alt", "ast", "total_bilirubin"], "first_every": "14", "first_unit": "days",
        "first_months": "3", "then_every": "1", "then_unit": "months", "note": "renamed",
        "based_on": lft_req.versions.order_by("-pk").first().pk})
    assert response.status_code == 302
    kept = MonitoringItem.objects.get(course=course, requirement__code="lft")
    assert kept.pk == item.pk and kept.requirement.clinic_id == clinic_a.pk  # the clinic's copy
    assert kept.snoozed_until == TODAY + timedelta(days=3)
    assert [f.note for f in kept.follow_ups.all()] == ["LFTs ordered at the GP"]
    overdue, _ = services.digest_querysets(clinic=clinic_a, today=TODAY + timedelta(days=1))
    assert kept not in overdue


def test_a_retired_requirement_keeps_its_item_and_follow_ups_without_a_due_date(course, nurse, clinic_a):
    item = items(course)["lft"]
    services.follow_up_record(item=item, user=nurse, kind="contacted", note="Phoned", until=TODAY + timedelta(days=2),
                              today=TODAY)
    Requirement.objects.filter(code="lft").update(active=False)
    items(course)
    item.refresh_from_db()
    assert item.due_date is None and item.notice == "No longer required" and item.follow_ups.count() == 1
    assert item not in MonitoringItem.objects.overdue(TODAY)


def test_a_stale_schedule_edit_is_a_conflict_and_changes_nothing(clinic_a, clinic_admin, client):
    """Issue #12 item 4: two admins open the same schedule; the second save is refused."""
    vitals = Requirement.objects.get(clinic__isnull=True, code="vitals")
    read_at = vitals.versions.order_by("-pk").first().pk
    post = {"label": "Vitals", "analytes": ["heart_rate"], "first_every": "14", "first_unit": "days", "first_months": "",
            "then_unit": "months", "note": "first admin", "based_on": read_at}
    client.force_login(clinic_admin)
    assert client.post(reverse("requirement_edit", args=[clinic_a.pk, vitals.pk]), post).status_code == 302
    response = client.post(reverse("requirement_edit", args=[clinic_a.pk, vitals.pk]), {**post, "first_every": "7",
                                                                                       "note": "second admin"})
    assert response.status_code == 200 and "changed by someone else" in response.content.decode()
    own = Requirement.objects.get(clinic=clinic_a, code="vitals")
    assert [v.note for v in own.versions.order_by("pk")][-1] == "first admin"
    assert Requirement.objects.filter(clinic=clinic_a, code="vitals").count() == 1
