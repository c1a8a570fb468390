"""One factory per model of accounts (style.md 3.5). The personas of the root conftest are
built with these; a test that needs one more person says only what differs.

    MembershipFactory(user__username="sam", clinic=clinic_a, role="staff").user
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import ApiToken, AuditEvent, Clinic, EmergencyAccess, Membership, Role, User

# The password every test user signs in with (test_auth, test_two_factor post it).
PASSWORD = "x-test-password-123"


class ClinicFactory(DjangoModelFactory[Clinic]):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")
    code = factory.Sequence(lambda n: f"clinic-{n}")
    timezone = "Europe/London"


class UserFactory(DjangoModelFactory[User]):
    """A person who can sign in, with an email address and no name (shown by username);
    no clinic (see MembershipFactory)."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password(PASSWORD)


class MembershipFactory(DjangoModelFactory[Membership]):
    """A user's role in a clinic; `MembershipFactory(...).user` is a member."""

    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    clinic = factory.SubFactory(ClinicFactory)
    role = Role.NURSE


class AuditEventFactory(DjangoModelFactory[AuditEvent]):
    """A trail row as accounts.audit writes it: a member of the clinic viewed a page."""

    class Meta:
        model = AuditEvent

    user = factory.SubFactory(UserFactory)
    username = factory.LazyAttribute(lambda e: e.user.username if e.user else "")
    clinic = factory.SubFactory(ClinicFactory)
    action = AuditEvent.Action.VIEW
    what = "the patient list"
    method = "GET"
    path = "/patients/"
    status = 200
    ip = "127.0.0.1"


class EmergencyAccessFactory(DjangoModelFactory[EmergencyAccess]):
    """A break-glass grant, in force for an hour, to a patient of another clinic."""

    class Meta:
        model = EmergencyAccess

    class Params:
        patient = factory.SubFactory("patients.tests.factories.PatientFactory",
                                     clinic=factory.SelfAttribute("..clinic"))

    user = factory.SubFactory(UserFactory)
    clinic = factory.SubFactory(ClinicFactory)
    patient_id = factory.LazyAttribute(lambda g: g.patient.pk)
    reason = "Patient collapsed in our emergency department; need the current dose and recent labs."
    granted_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda g: g.granted_at + timedelta(hours=1))


class ApiTokenFactory(DjangoModelFactory[ApiToken]):
    """A REST API key (its hash; the key itself is `key-<n>`), valid for 30 days."""

    class Meta:
        model = ApiToken

    clinic = factory.SubFactory(ClinicFactory)
    user = factory.SubFactory(UserFactory)
    name = "LIS interface"
    prefix = factory.Sequence(lambda n: f"key-{n}"[:8])
    key_hash = factory.Sequence(lambda n: hashlib.sha256(f"key-{n}".encode()).hexdigest())
    created_by = factory.SelfAttribute("user")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
