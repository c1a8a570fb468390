"""Sending a planned digest (the outbox row): claimed once, sent once; a crash is resent
after the lease, a lost task requeued; SMTP failures retried with backoff for hours, a
permanent one failed at once; failures shown in the outbox, where a clinic admin retries
them. Planning is in test_digests.py. The scenario is in monitoring/tests/scenario.py."""

from __future__ import annotations

from datetime import timedelta
from smtplib import SMTPRecipientsRefused, SMTPServerDisconnected
from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from monitoring import services
from monitoring.models import Digest
from monitoring.tests.scenario import items, plan

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def test_a_sent_or_claimed_digest_is_not_sent_again(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    assert services.digest_send(digest_id=digest.pk) == "sent"
    assert services.digest_send(digest_id=digest.pk) == "not claimed"
    assert len(mail.outbox) == 1


def test_a_crash_after_the_claim_is_resent_once_after_the_lease(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    now = timezone.now()
    Digest.objects.filter(pk=digest.pk).update(status="sending", lease_until=now + timedelta(minutes=5), attempts=1)
    assert services.digest_send(digest_id=digest.pk) == "not claimed"  # still leased by the crashed worker
    later = now + timedelta(minutes=6)
    with mock.patch("monitoring.services._enqueue_sends") as enqueue:
        assert services.digests_requeue(now=later) == 1
    assert enqueue.call_args[0][0] == [digest.pk]
    assert services.digest_send(digest_id=digest.pk, now=later) == "sent"
    assert len(mail.outbox) == 1


def test_a_lost_task_is_requeued_from_the_pending_row(course, staff_member):
    items(course)
    plan()  # the task never reached the broker (on_commit hooks do not run here)
    with mock.patch("monitoring.services._enqueue_sends") as enqueue:
        assert services.digests_requeue(now=timezone.now() + timedelta(minutes=11)) == 1
    assert enqueue.call_args[0][0] == [Digest.objects.get().pk]


def test_smtp_failure_retries_then_fails_and_shows_in_the_outbox(course, staff_member, clinic_admin, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=SMTPServerDisconnected("gone")):
        for attempt in range(1, Digest.MAX_ATTEMPTS):
            with pytest.raises(services.DigestDeferred):
                services.digest_send(digest_id=digest.pk)
            digest.refresh_from_db()
            assert (digest.status, digest.attempts) == ("pending", attempt)
        assert services.digest_send(digest_id=digest.pk) == "failed"
    digest.refresh_from_db()
    assert digest.status == "failed" and "SMTPServerDisconnected" in digest.last_error
    client.force_login(clinic_admin)
    page = client.get(reverse("outbox")).content.decode()
    assert "1 failed" in page and "SMTPServerDisconnected" in page


def test_permanent_smtp_error_fails_at_once(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    error = SMTPRecipientsRefused({"sam@example.org": (550, b"user unknown")})
    error.smtp_code = 550
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=error):
        assert services.digest_send(digest_id=digest.pk) == "failed"


# --- mail faults (issue: an error that is not an SMTP error looped; a short outage lost the day) ---


def test_an_error_that_is_not_smtp_ends_the_attempt_counts_and_fails(course, staff_member, clinic_admin, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    Digest.objects.filter(pk=digest.pk).update(to_address="sam@example.org\r\nBcc: x@example.org")
    assert services.digest_send(digest_id=digest.pk) == "failed"
    digest.refresh_from_db()
    assert (digest.status, digest.attempts, digest.lease_until) == ("failed", 1, None)
    assert "BadHeaderError" in digest.last_error or "ValueError" in digest.last_error
    assert services.digests_requeue(now=timezone.now() + timedelta(hours=2)) == 0, "never requeued"
    client.force_login(clinic_admin)
    assert "could not be delivered" in client.get(reverse("home")).content.decode()


def test_550_at_rcpt_is_permanent_without_an_smtp_code_attribute(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    error = SMTPRecipientsRefused({"sam@example.org": (550, b"user unknown")})  # as smtplib raises it
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=error):
        assert services.digest_send(digest_id=digest.pk) == "failed"


def test_a_short_outage_is_retried_for_hours_with_backoff(course, staff_member):
    from monitoring import rules

    items(course)
    plan()
    digest = Digest.objects.get()
    now = timezone.now()
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=SMTPServerDisconnected("gone")):
        for _ in range(3):
            with pytest.raises(services.DigestDeferred):
                services.digest_send(digest_id=digest.pk, now=now)
            digest.refresh_from_db()
            assert digest.status == "pending" and digest.next_attempt_at > now
            with mock.patch("monitoring.services._enqueue_sends"):
                assert services.digests_requeue(now=now) == 0, "not before its next attempt"
                assert services.digests_requeue(now=digest.next_attempt_at) == 1
            now = digest.next_attempt_at
    total = sum((rules.retry_delay(a) for a in range(1, Digest.MAX_ATTEMPTS)), timedelta())
    assert total > timedelta(hours=3)
    assert services.digest_send(digest_id=digest.pk, now=now) == "sent"


# --- the outbox page -------------------------------------------------------------------------------


def test_a_clinic_admin_retries_a_failed_digest_from_the_outbox(course, staff_member, clinic_admin, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    Digest.objects.filter(pk=digest.pk).update(status="failed", attempts=10, last_error="SMTPServerDisconnected")
    client.force_login(clinic_admin)
    assert 'action="/monitoring/outbox/' in client.get(reverse("outbox")).content.decode()
    with mock.patch("monitoring.services._enqueue_sends") as enqueue:
        client.post(reverse("digest_retry", args=[digest.pk]))
    digest.refresh_from_db()
    assert (digest.status, digest.attempts) == ("pending", 0) and enqueue.called
    assert services.digest_send(digest_id=digest.pk) == "sent"


def test_staff_cannot_retry_a_digest(course, staff_member, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    Digest.objects.filter(pk=digest.pk).update(status="failed")
    client.force_login(staff_member)
    assert client.post(reverse("digest_retry", args=[digest.pk])).status_code == 403
