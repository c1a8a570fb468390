"""Digests at any clinic size (issue #14): counts per test and the most overdue first up
to a limit, computed in the database; rendered once per clinic and kind; a batch sent over
one SMTP connection."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Membership, Role
from accounts.tests.factories import UserFactory
from monitoring import services
from monitoring.models import Digest, Requirement
from monitoring.tests.factories import MonitoringItemFactory, RequirementFactory
from monitoring.tests.scenario import TODAY, plan
from patients.tests.factories import PatientFactory, TreatmentCourseFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]


def lft(clinic):
    return RequirementFactory(clinic=clinic, code="lft-own", label="Liver panel")


def overdue(clinic, n, prefix="OD", days=None):
    requirement = Requirement.objects.filter(clinic=clinic, code="lft-own").first() or lft(clinic)
    for i in range(n):
        course = TreatmentCourseFactory(patient=PatientFactory(clinic=clinic, mrn=f"{prefix}-{i:04d}"), on_drug=True)
        due = TODAY - timedelta(days=days or i + 1)
        MonitoringItemFactory(course=course, requirement=requirement, due_date=due, overdue_from=due + timedelta(days=1))


def staff(clinic, n):
    for i in range(n):
        Membership.objects.create(user=UserFactory(username=f"staff{i}", email=f"staff{i}@example.org"),
                                  clinic=clinic, role=Role.STAFF)


def test_a_digest_lists_the_most_overdue_first_up_to_the_limit_with_counts_per_test(clinic_a):
    overdue(clinic_a, services.DIGEST_LIST_LIMIT + 10)
    staff(clinic_a, 1)
    plan()
    (pk,) = Digest.objects.values_list("pk", flat=True)
    assert services.digest_send(digest_id=pk) == "sent"
    (msg,) = mail.outbox
    body = msg.body
    assert f"Overdue: {services.DIGEST_LIST_LIMIT + 10}" in body
    assert f"{services.DIGEST_LIST_LIMIT} of {services.DIGEST_LIST_LIMIT + 10}" in body and "… and 10 more on the worklist" in body
    listed = [line.split(" — ")[0].strip() for line in body.splitlines() if line.startswith("  OD-")]
    assert listed == [f"OD-{i:04d}" for i in range(services.DIGEST_LIST_LIMIT + 9, 9, -1)]  # most overdue first
    assert "BY TEST (overdue / due today)" in body


def test_a_digest_stays_the_same_size_whatever_the_backlog(clinic_a):
    staff(clinic_a, 1)
    overdue(clinic_a, services.DIGEST_LIST_LIMIT)
    plan()
    services.digest_send(digest_id=Digest.objects.get().pk)
    small = len(mail.outbox[0].body) + len(mail.outbox[0].alternatives[0][0])
    Digest.objects.all().delete()
    mail.outbox.clear()
    from monitoring.models import ClinicSettings

    ClinicSettings.objects.filter(clinic=clinic_a).update(last_digest_date=None)
    overdue(clinic_a, services.DIGEST_LIST_LIMIT * 5, prefix="MO", days=2)
    plan()
    services.digest_send(digest_id=Digest.objects.get().pk)
    large = len(mail.outbox[0].body) + len(mail.outbox[0].alternatives[0][0])
    assert large < small * 1.2


def test_a_batch_renders_once_per_clinic_and_kind_and_uses_one_connection(clinic_a):
    overdue(clinic_a, 3)
    staff(clinic_a, 5)
    plan()
    ids = list(Digest.objects.values_list("pk", flat=True))
    assert len(ids) == 5
    with mock.patch("monitoring.services.get_connection", wraps=services.get_connection) as connect, \
            mock.patch("monitoring.services._digest_render", wraps=services._digest_render) as render:
        outcomes = services.digests_send(digest_ids=ids)
    assert set(outcomes.values()) == {"sent"} and len(mail.outbox) == 5
    assert connect.call_count == 1 and render.call_count == 1
    # Each recipient still gets their own unsubscribe link.
    links = {next(line for line in m.body.splitlines() if "unsubscribe" in line) for m in mail.outbox}
    assert len(links) == 5


def smtp_to(settings, sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


def test_a_batch_goes_over_one_smtp_connection_to_a_real_server(clinic_a, smtp_sink, settings):
    """Django's backend opens and closes a connection per message unless it is opened
    first: counted at the server, a batch of five is one connection."""
    overdue(clinic_a, 3)
    staff(clinic_a, 5)
    plan()
    smtp_to(settings, smtp_sink)
    outcomes = services.digests_send(digest_ids=list(Digest.objects.order_by("pk").values_list("pk", flat=True)))
    assert set(outcomes.values()) == {"sent"}
    assert len(smtp_sink.messages) == 5 and len(set(smtp_sink.peers)) == 1


def test_no_line_of_a_digest_needs_quoted_printable(clinic_a, smtp_sink, settings):
    """Lines over 998 characters make the whole part quoted-printable (slow to build,
    harder to read): each row of the lists is a line of its own."""
    overdue(clinic_a, services.DIGEST_LIST_LIMIT + 5)
    staff(clinic_a, 1)
    plan()
    smtp_to(settings, smtp_sink)
    assert services.digest_send(digest_id=Digest.objects.get().pk) == "sent"
    raw = smtp_sink.messages[0][2]
    assert b"quoted-printable" not in raw.lower()
    assert max(len(line) for line in raw.splitlines()) <= 998


def test_a_batch_claims_in_one_statement_and_skips_what_another_worker_holds(clinic_a):
    overdue(clinic_a, 2)
    staff(clinic_a, 3)
    plan()
    first, held, last = Digest.objects.order_by("pk").values_list("pk", flat=True)
    Digest.objects.filter(pk=held).update(status=Digest.Status.SENDING, lease_until=timezone.now() + timedelta(minutes=5))
    outcomes = services.digests_send(digest_ids=[last, held, first], now=timezone.now())
    assert outcomes == {last: "sent", held: "not claimed", first: "sent"}
    assert [m.to for m in mail.outbox] == [[Digest.objects.get(pk=pk).to_address] for pk in (last, first)]  # in the order asked
    assert Digest.objects.get(pk=held).status == Digest.Status.SENDING and Digest.objects.get(pk=held).attempts == 0


def test_a_slow_batch_renews_the_lease_of_what_it_has_not_sent_yet(clinic_a, settings):
    """Claimed together, the batch's last digests would outlive a lease a slow server
    eats; past half the lease the rest of the batch is leased again, so the requeue
    does not hand them to a second worker."""
    overdue(clinic_a, 2)
    staff(clinic_a, 3)
    plan()
    ids = list(Digest.objects.order_by("pk").values_list("pk", flat=True))
    clock = iter(range(0, 10_000, settings.DIGEST_LEASE_SECONDS))  # each look at the clock: a whole lease later
    leases = []

    def renew(digest_ids, *, lease):
        leases.append(list(digest_ids))
        real_renew(digest_ids, lease=lease)

    real_renew = services._digests_renew
    with mock.patch("monitoring.services.time_monotonic", lambda: next(clock)), \
            mock.patch("monitoring.services._digests_renew", renew):
        outcomes = services.digests_send(digest_ids=ids)
    assert set(outcomes.values()) == {"sent"}
    assert leases == [ids, ids[1:], ids[2:]]
