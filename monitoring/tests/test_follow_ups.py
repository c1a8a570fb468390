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


def test_the_form_comes_when_asked_for_into_the_row_or_as_a_page(course, nurse, client):
    """The worklist carries a link per row, not a form per row (issue #14): htmx fetches
    the form into the row; without JavaScript the link opens a page with the same form,
    whose answer goes back to the worklist."""
    item = items(course)["lft"]
    client.force_login(nurse)
    url = reverse("follow_up", args=[item.pk])
    worklist = client.get(reverse("home")).content.decode()
    assert f'hx-get="{url}"' in worklist and "csrfmiddlewaretoken" not in worklist.split('data-testid="overdue"')[1]
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.strip().startswith("<form") and f'hx-post="{url}"' in fragment and f'hx-target="#item-{item.pk}"' in fragment
    page = client.get(url)
    body = page.content.decode()
    assert page.status_code == 200 and "<html" in body and "hx-post" not in body and 'name="note"' in body
    assert item.requirement.label in body and "Back to the worklist" in body
    response = client.post(url, {"kind": "contacted", "note": "Phoned", "until": "2026-02-23"})
    assert response.status_code == 302 and response.url == reverse("home")
    item.refresh_from_db()
    assert item.snoozed_until == date(2026, 2, 23)


def test_an_error_in_the_row_keeps_the_form_open_with_the_message_and_the_entry(course, nurse, client):
    item = items(course)["lft"]
    client.force_login(nurse)
    response = client.post(reverse("follow_up", args=[item.pk]),
                           {"kind": "contacted", "note": "Phoned, coming Thursday", "until": "2026-03-09"},
                           HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.strip().startswith("<tr") and 'role="alert"' in body and "Snooze at most 7 days" in body
    assert 'value="contacted" selected' in body and 'value="Phoned, coming Thursday"' in body and 'value="2026-03-09"' in body
    item.refresh_from_db()
    assert item.snoozed_until is None


def test_without_javascript_an_error_stays_on_the_page_with_the_entry(course, nurse, client):
    item = items(course)["lft"]
    client.force_login(nurse)
    url = reverse("follow_up", args=[item.pk])
    response = client.post(url, {"kind": "ordered", "note": "GP bloods ordered", "until": "2026-02-01",
                                 "back": "/?requirement=lft&overdue_page=2"})
    body = response.content.decode()
    assert response.status_code == 400 and "The snooze date cannot be in the past. Nothing was saved." in body
    assert 'value="GP bloods ordered"' in body and 'name="back" value="/?requirement=lft&amp;overdue_page=2"' in body
    assert not FollowUp.objects.exists()


def test_without_javascript_saving_returns_to_the_worklist_page_it_came_from(course, nurse, client):
    item = items(course)["lft"]
    client.force_login(nurse)
    url = reverse("follow_up", args=[item.pk])
    page = client.get(url, HTTP_REFERER="http://testserver/?requirement=lft&overdue_page=2").content.decode()
    assert 'name="back" value="/?requirement=lft&amp;overdue_page=2"' in page
    assert 'href="/?requirement=lft&amp;overdue_page=2">Back to the worklist' in page
    response = client.post(url, {"kind": "ordered", "note": "GP", "until": "2026-02-23",
                                 "back": "/?requirement=lft&overdue_page=2"})
    assert response.url == "/?requirement=lft&overdue_page=2"
    for elsewhere in ("https://evil.example/?x=1", "/patients/", "//evil.example/"):
        assert 'name="back" value="/"' in client.get(url, HTTP_REFERER=elsewhere).content.decode(), elsewhere


def test_the_form_offers_the_clinic_s_dates_and_keeps_a_longer_snooze(course, nurse, client):
    item = items(course)["lft"]
    client.force_login(nurse)
    url = reverse("follow_up", args=[item.pk])
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'value="2026-02-23" min="2026-02-20" max="2026-02-27"' in fragment  # today + 3; today … today + 7
    services.follow_up_record(item=item, user=nurse, kind="ordered", note="GP", until=TODAY + timedelta(days=6), today=TODAY)
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'value="2026-02-26"' in fragment  # reopening does not shorten the snooze unasked
    assert "Last: test ordered — “GP” —" in fragment and "snoozed until 26 Feb." in fragment  # who, when, why
    cancel = client.get(url + "?cancel=1", HTTP_HX_REQUEST="true").content.decode()
    assert cancel.strip().startswith("<a") and "Ordered / contacted" in cancel and "<form" not in cancel


def test_a_signed_out_htmx_request_navigates_to_the_sign_in_page(course, client):
    """The session expired with the worklist open: htmx is told to load the sign-in page
    as a page (back to the worklist after), not to swap it into the row."""
    item = items(course)["lft"]
    for method in ("get", "post"):
        response = getattr(client, method)(reverse("follow_up", args=[item.pk]), HTTP_HX_REQUEST="true",
                                           HTTP_HX_CURRENT_URL="http://testserver/?overdue_page=2")
        assert response.status_code == 200 and response.content == b""
        assert response["HX-Redirect"] == "/login/?next=/%3Foverdue_page%3D2"
    plain = client.get(reverse("follow_up", args=[item.pk]))
    assert plain.status_code == 302 and "HX-Redirect" not in plain


def test_another_clinic_cannot_fetch_the_form(course, client, clinic_b):
    from accounts.tests.factories import MembershipFactory

    item = items(course)["lft"]
    client.force_login(MembershipFactory(clinic=clinic_b, role="nurse").user)
    assert client.get(reverse("follow_up", args=[item.pk]), HTTP_HX_REQUEST="true").status_code == 404
    client.logout()
    assert client.get(reverse("follow_up", args=[item.pk])).status_code == 302  # to the sign-in page


def test_the_csv_export_carries_the_follow_up_date(course, nurse, client):
    item = items(course)["lft"]
    services.follow_up_record(item=item, user=nurse, kind="ordered", note="GP", until=TODAY + timedelta(days=3), today=TODAY)
    client.force_login(nurse)
    csv_text = b"".join(client.get(reverse("home") + "?export=csv").streaming_content).decode()
    (line,) = [line for line in csv_text.splitlines() if line.startswith(("overdue,", "due_soon,")) and "A-0042" in line
               and "Liver" in line]
    assert line.endswith("followed up until 2026-02-23")
