"""One factory per model of monitoring (style.md 3.5). The default requirements (lft,
cpk, …) come from a data migration; RequirementFactory builds a clinic's own one.

Due dates are the services' to compute (monitoring.services.patient_schedule_recompute);
MonitoringItemFactory stores one as it would be stored, for tests of what reads it.
"""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from monitoring import rules
from monitoring.models import (
    ClinicSettings,
    Digest,
    DirtyPatient,
    FollowUp,
    Heartbeat,
    MonitoringItem,
    MonitoringRecord,
    NotificationPreference,
    Requirement,
    RequirementVersion,
)


class HeartbeatFactory(DjangoModelFactory[Heartbeat]):
    class Meta:
        model = Heartbeat

    name = factory.Sequence(lambda n: f"job-{n}")
    last_run_at = factory.LazyFunction(timezone.now)
    runs = 1


class ClinicSettingsFactory(DjangoModelFactory[ClinicSettings]):
    class Meta:
        model = ClinicSettings

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")


class RequirementFactory(DjangoModelFactory[Requirement]):
    """A clinic's own requirement (clinic policy), without a schedule: add a
    RequirementVersionFactory for one."""

    class Meta:
        model = Requirement

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    code = factory.Sequence(lambda n: f"req-{n}")
    label = factory.LazyAttribute(lambda r: r.code.upper())
    analytes = factory.List(["heart_rate"])
    source = "Clinic policy"


class RequirementVersionFactory(DjangoModelFactory[RequirementVersion]):
    """Monthly, in force since long before any test's course."""

    class Meta:
        model = RequirementVersion

    requirement = factory.SubFactory(RequirementFactory)
    schedule = factory.Dict({"phases": [{"months": None, "every_months": 1}]})
    effective_from = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=365))


class MonitoringRecordFactory(DjangoModelFactory[MonitoringRecord]):
    """A test done outside the lab panels, recorded today."""

    class Meta:
        model = MonitoringRecord

    patient = factory.SubFactory("patients.tests.factories.PatientFactory")
    requirement_code = "brain_imaging"
    performed_on = factory.LazyFunction(timezone.localdate)
    recorded_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class MonitoringItemFactory(DjangoModelFactory[MonitoringItem]):
    """Due in a week, in its course's clinic, on a requirement of that clinic."""

    class Meta:
        model = MonitoringItem

    course = factory.SubFactory("patients.tests.factories.TreatmentCourseFactory", on_drug=True)
    clinic = factory.LazyAttribute(lambda i: i.course.patient.clinic)
    requirement = factory.SubFactory(RequirementFactory, clinic=factory.SelfAttribute("..clinic"))
    due_date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=7))
    overdue_from = factory.LazyAttribute(lambda i: i.due_date + timedelta(days=rules.DEFAULT_GRACE_DAYS + 1))


class FollowUpFactory(DjangoModelFactory[FollowUp]):
    """'Patient contacted', snoozing the item for three days."""

    class Meta:
        model = FollowUp

    item = factory.SubFactory(MonitoringItemFactory)
    kind = FollowUp.Kind.CONTACTED
    note = "Phoned; coming on Monday"
    snoozed_until = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=3))
    recorded_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class DirtyPatientFactory(DjangoModelFactory[DirtyPatient]):
    class Meta:
        model = DirtyPatient

    class Params:
        patient = factory.SubFactory("patients.tests.factories.PatientFactory")

    patient_id = factory.LazyAttribute(lambda d: d.patient.pk)


class DigestFactory(DjangoModelFactory[Digest]):
    """Today's pending digest."""

    class Meta:
        model = Digest

    recipient = factory.SubFactory("accounts.tests.factories.UserFactory")
    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    for_date = factory.LazyFunction(timezone.localdate)
    to_address = factory.LazyAttribute(lambda d: d.recipient.email)
    item_count = 1


class NotificationPreferenceFactory(DjangoModelFactory[NotificationPreference]):
    class Meta:
        model = NotificationPreference

    user = factory.SubFactory("accounts.tests.factories.UserFactory")
    digests_enabled = True
