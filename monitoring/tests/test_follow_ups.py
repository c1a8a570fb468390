"""A nurse's follow-up on an overdue item ('test ordered', 'patient contacted'): it snoozes
the item for at most seven days, a new test ends it, and through htmx the page gets the
row back. The scenario is in monitoring/tests/scenario.py."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse

from monitoring import services
from monitoring.models import FollowUp, MonitoringItem
from monitoring.tests.scenario import TODAY, items, lft
from protocols.errors import InputError

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def test_follow_up_snoozes_at_most_seven_days_and_a_new_test_ends_it(course, nurse):
    item = items(course)["lft"]
    with pytest.raises(InputError, match="at most 7 days"):
        services.follow_up_record(item=item, user=nurse, kind="ordered", note="GP", until=TODAY + timedelta(days=8), today=TODAY)
    with pytest.raises(InputError, match="Say why"):
        services.follow_up_record(item=item, user=nurse, kind="ordered", note=" ", until=TODAY + timedelta(days=2), today=TODAY)
    services.follow_up_record(item=item, user=nurse, kind="contacted", note="Phoned; coming Monday",
                              until=TODAY + timedelta(days=3), today=TODAY)
    item.refresh_from_db()
    assert item.overdue_from == TODAY + timedelta(days=4)
    assert item.status_on(TODAY) == "snoozed"
    assert not MonitoringItem.objects.overdue(TODAY).exists()
    assert FollowUp.objects.get().recorded_by == nurse
    lft(course, nurse, date(2026, 2, 20), hour=8)
    item = items(course)["lft"]
    assert item.snoozed_until is None and item.due_date == date(2026, 3, 6)


def test_follow_up_through_htmx_returns_the_row(course, nurse, client):
    item = items(course)["lft"]
    client.force_login(nurse)
    response = client.post(reverse("follow_up", args=[item.pk]),
                           {"kind": "ordered", "note": "Ordered at GP", "until": "2026-02-23"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.strip().startswith("<tr") and "snoozed until 23 Feb" in body
    assert "followed up until 23 Feb" in body
