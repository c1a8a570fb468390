"""The daily digest, planned: who gets one (staff with an email, not unsubscribed; prescribers
and admins for escalations), when (the clinic's local digest time, once a day), and what it
says (MRN, test and days overdue, nothing more). Sending and its failures are in
test_digest_delivery.py. The scenario is in monitoring/tests/scenario.py."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Membership, User
from monitoring import services
from monitoring.models import ClinicSettings, Digest
from monitoring.tests.scenario import items, plan, send_all

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def test_digest_lists_mrn_test_and_days_overdue_and_nothing_more(course, staff_member, django_capture_on_commit_callbacks):
    items(course)
    with django_capture_on_commit_callbacks(execute=False):
        summary = plan()
    assert summary["digests"] == 1
    send_all()
    (msg,) = mail.outbox
    assert msg.to == ["sam@example.org"]
    assert "1 overdue" in msg.subject
    text, (html, mime) = msg.body, msg.alternatives[0]
    assert mime == "text/html"
    for part in (text, html):
        assert "A-0042" in part and "Liver panel" in part and "32" in part
        assert "Greta" not in part and "Holm" not in part and "1960" not in part and "U/L" not in part
    assert "http://127.0.0.1:8000/" in text and "/monitoring/unsubscribe/" in text
    token_url = text.split("unsubscribe: ")[1].split()[0].replace("http://127.0.0.1:8000", "")
    assert token_url.startswith("/monitoring/unsubscribe/")
    assert msg.extra_headers["List-Unsubscribe"] == f"<http://127.0.0.1:8000{token_url}>"  # the client's own button


def test_counts_only_option_leaves_out_the_mrn(course, staff_member, clinic_a):
    items(course)
    ClinicSettings.objects.filter(clinic=clinic_a).update(digest_counts_only=True)
    plan()
    send_all()
    assert "A-0042" not in mail.outbox[0].body and "Overdue: 1" in mail.outbox[0].body


def test_digest_waits_for_the_clinic_local_time(course, staff_member):
    items(course)
    assert plan(hour=6)["digests"] == 0
    assert plan(hour=7)["digests"] == 1


def test_running_the_job_twice_sends_one_digest_per_person_per_day(course, staff_member):
    items(course)
    plan()
    ClinicSettings.objects.update(last_digest_date=None)  # as if a second beat raced past the clinic claim
    plan()
    send_all()
    send_all()
    assert Digest.objects.count() == 1 and len(mail.outbox) == 1


def test_staff_without_email_is_skipped_and_reported(course, clinic_a, clinic_admin, client):
    user = User.objects.create_user("noemail", password="x-test-password-123")
    Membership.objects.create(user=user, clinic=clinic_a, role="staff")
    User.objects.create_user("loner", email="loner@example.org", password="x-test-password-123")
    items(course)
    summary = plan()
    assert summary["skipped"] == 1 and summary["users_without_clinic"] >= 1
    digest = Digest.objects.get(recipient=user)
    assert digest.status == "skipped" and "No email address" in digest.last_error
    client.force_login(clinic_admin)
    assert "No email address" in client.get(reverse("outbox")).content.decode()


def test_escalation_goes_to_prescribers_and_admins_after_seven_days(course, staff_member, prescriber, clinic_admin):
    ClinicSettings.objects.update(escalation_days=7)
    items(course)  # LFT due 19 Jan: 32 days overdue
    summary = plan()
    assert summary["escalations"] == 2
    send_all()
    escalations = [m for m in mail.outbox if "more than 7 days" in m.subject]
    assert sorted(m.to[0] for m in escalations) == ["clinicadmin@example.org", "prescriber@example.org"]


def test_unsubscribe_link_turns_digests_off(course, staff_member, client):
    token = services.unsubscribe_token(staff_member)
    response = client.post(reverse("unsubscribe", args=[token]), {})
    assert response.status_code == 200 and "Saved" in response.content.decode()
    assert f"<strong>{staff_member.username}</strong>" in response.content.decode()  # whose emails the link changes
    items(course)
    assert plan()["digests"] == 0
    assert client.get(reverse("unsubscribe", args=["forged"])).status_code == 404


def test_no_items_no_digest(clinic_a, staff_member):
    assert plan()["digests"] == 0
    assert not mail.outbox


def test_a_rolled_back_plan_sends_nothing_and_leaves_no_task(course, staff_member, django_capture_on_commit_callbacks):
    """reliability.md F13: digests are enqueued on commit; a rollback leaves no row and no task."""
    from django.db import transaction

    items(course)
    with (mock.patch("monitoring.tasks.send_digests.delay") as delay,
          django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError), transaction.atomic()):
        assert plan()["digests"] == 1
        raise RuntimeError("something after the plan failed")
    assert callbacks == [] and not delay.called
    assert not Digest.objects.exists() and mail.outbox == []
