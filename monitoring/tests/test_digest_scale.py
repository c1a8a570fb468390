"""Digests at any clinic size (issue #14): counts per test and the most overdue first up
to a limit, computed in the database; rendered once per clinic and kind; a batch sent over
one SMTP connection."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail

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
