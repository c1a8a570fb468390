"""The monitoring plan as data, each patient's next due dates (stored and indexed), the
nurses' follow-up actions, and the outbox of reminder emails."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accounts.access import ClinicScopedQuerySet
from accounts.clinic_time import on_clinic_days
from accounts.models import AppendOnly, Clinic, HistoryIP
from monitoring import rules


class Heartbeat(models.Model):
    """The last time a periodic job completed. /health/ reports how old it is, so a
    stopped beat or worker is noticed (reliability.md F11: monitor the monitor)."""

    name = models.CharField(max_length=80, unique=True)
    last_run_at = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_run_at:%Y-%m-%d %H:%M:%S}"


class ClinicSettings(models.Model):
    """Per-clinic monitoring and reminder settings (defaults: reference §5, issue #5)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="monitoring_settings")
    due_soon_days = models.PositiveSmallIntegerField(
        default=rules.DEFAULT_DUE_SOON_DAYS, validators=[MaxValueValidator(rules.MAX_SETTING_DAYS)],
        help_text="Days before the due date that count as 'due soon' (0 to 60).")
    grace_days = models.PositiveSmallIntegerField(
        default=rules.DEFAULT_GRACE_DAYS, validators=[MaxValueValidator(rules.MAX_SETTING_DAYS)],
        help_text="Days after the due date before an item is overdue (0 to 60).")
    escalation_days = models.PositiveSmallIntegerField(
        default=7, validators=[MaxValueValidator(rules.MAX_SETTING_DAYS)],
        help_text="Items overdue for more days than this also go to prescribers and clinic admins (0 to 60).")
    digest_time = models.TimeField(default=time(7, 0), help_text="Local time of the daily digest.")
    digest_counts_only = models.BooleanField(
        default=False, help_text="Send only counts and a link (no MRNs) in the daily digest.")
    patient_phone = models.CharField(
        max_length=40, blank=True, validators=[RegexValidator(
            r"^[0-9 +()./-]*(?:(?:ext\.?|x) ?[0-9]+)?$",
            "A phone number: digits, spaces, + ( ) . / - and an optional extension (ext 123).")],
        help_text="The number patients call with questions or symptoms (printed on the handout).")
    fill_check_days = models.PositiveSmallIntegerField(
        default=7, validators=[MaxValueValidator(rules.MAX_SETTING_DAYS)],
        help_text="Days after a prescription before 'no fill confirmed' shows on the worklist (0 to 60; clinic policy, "
                  "the reference gives no number).")
    last_digest_date = models.DateField(null=True, blank=True, editable=False)

    history = HistoricalRecords(bases=[HistoryIP])

    class Meta:
        verbose_name_plural = "clinic settings"

    def __str__(self) -> str:
        return f"Monitoring settings of {self.clinic}"

    @classmethod
    def for_clinic(cls, clinic_id: int) -> ClinicSettings:
        """For reading: the clinic's row, or the defaults (unsaved) when it has none."""
        return cls.objects.filter(clinic_id=clinic_id).first() or cls(clinic_id=clinic_id)

    @classmethod
    def ensure(cls, clinic_id: int) -> ClinicSettings:
        return cls.objects.get_or_create(clinic_id=clinic_id)[0]


class RequirementQuerySet(models.QuerySet["Requirement"]):
    def for_clinic(self, clinic_id: int, drug: str = "alectinib") -> list[Requirement]:
        """The clinic's requirements: its own, and the defaults it has not replaced."""
        found = list(self.filter(Q(clinic_id=clinic_id) | Q(clinic__isnull=True), drug=drug).prefetch_related("versions"))
        own = {r.code for r in found if r.clinic_id == clinic_id}
        return [r for r in found if r.active and (r.clinic_id == clinic_id or r.code not in own)]


class Requirement(models.Model):
    """One monitoring requirement of a drug protocol. clinic=None: the default of every
    clinic (reference §5); a clinic's own row with the same code replaces it there."""

    clinic = models.ForeignKey(Clinic, null=True, blank=True, on_delete=models.CASCADE, related_name="requirements")
    drug = models.CharField(max_length=40, default="alectinib")
    code = models.SlugField(max_length=40)
    label = models.CharField(max_length=120)
    analytes = models.JSONField(default=list, blank=True, help_text="Results that satisfy it (all of them, same day).")
    source = models.CharField(max_length=300)
    label_interval = models.BooleanField(default=False, help_text="False: clinic policy, the label gives no interval.")
    active = models.BooleanField(default=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = RequirementQuerySet.as_manager()

    class Meta:
        ordering = ["clinic_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "drug", "code"], name="requirement_unique_per_clinic"),
            models.UniqueConstraint(fields=["drug", "code"], condition=Q(clinic__isnull=True), name="requirement_unique_default"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def current_version(self) -> RequirementVersion | None:
        return self.version_on(timezone.localdate())

    def version_on(self, day: date) -> RequirementVersion | None:
        """The schedule in force on `day` (versions are prefetched in date order)."""
        chosen = None
        for v in sorted(self.versions.all(), key=lambda v: (v.effective_from, v.pk)):
            if v.effective_from <= day:
                chosen = v
        return chosen


class RequirementVersion(models.Model):
    """A schedule from a date on: edits add a version, so past due dates keep theirs."""

    requirement = models.ForeignKey(Requirement, on_delete=models.CASCADE, related_name="versions")
    schedule = models.JSONField(default=dict)
    effective_from = models.DateField()
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["effective_from", "pk"]

    def __str__(self) -> str:
        return f"{self.requirement} from {self.effective_from}"

    @property
    def parsed(self) -> rules.Schedule:
        return rules.Schedule.from_dict(self.schedule)

    def describe(self) -> str:
        phases = self.parsed.phases
        if not phases:
            return "not scheduled"
        parts = []
        for p in phases:
            every = f"every {p.every_days} days" if p.every_days else (
                "monthly" if p.every_months == 1 else f"every {p.every_months} months")
            if p.days:
                parts.append(f"{every} for the first {p.days} days")
            else:
                parts.append(f"{every} for {p.months} month{'s' if p.months != 1 else ''}" if p.months else every)
        return ", then ".join(parts)


class MonitoringRecord(models.Model):
    """A test done outside the lab panels (e.g. brain imaging), on a date."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="monitoring_records")
    requirement_code = models.SlugField(max_length=40)
    performed_on = models.DateField()
    note = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[HistoryIP])

    class Meta:
        ordering = ["-performed_on"]

    def __str__(self) -> str:
        return f"{self.requirement_code} on {self.performed_on}"


class ItemQuerySet(ClinicScopedQuerySet["MonitoringItem"]):
    def overdue(self, today: date) -> ItemQuerySet:
        """One indexed range query on the stored deadline (style.md habit 1)."""
        return self.filter(overdue_from__lte=today)

    def overdue_on(self, todays: Mapping[int, date]) -> ItemQuerySet:
        """Overdue in each clinic on its own today (`{clinic_id: date}`), in one query:
        a user in Auckland and Honolulu clinics sees what each clinic's digest lists."""
        return self.filter(on_clinic_days(todays, lambda cid, day: Q(overdue_from__lte=day)))

    def due_soon_on(self, todays: Mapping[int, date], soon_days: Mapping[int, int],
                    grace_days: Mapping[int, int] | None = None) -> ItemQuerySet:
        """Due within each clinic's 'due soon' days of its own today (past due within
        grace or snoozed included), not overdue. One index range on the stored deadline
        (issue #14): such an item becomes overdue after today and at the latest when its
        grace or its snooze (at most 7 days) runs out."""
        grace = grace_days or {}

        def due_soon(cid: int, day: date) -> Q:
            latest = max(soon_days[cid] + grace.get(cid, rules.DEFAULT_GRACE_DAYS), FollowUp.MAX_SNOOZE_DAYS) + 1
            return Q(overdue_from__gt=day, overdue_from__lte=day + timedelta(days=latest),
                     due_date__lte=day + timedelta(days=soon_days[cid]))

        return self.filter(on_clinic_days(todays, due_soon))

    def with_patient(self) -> ItemQuerySet:
        return self.select_related("course__patient", "requirement", "clinic")


class MonitoringItem(models.Model):
    """One requirement for one patient on treatment, with its next due date."""

    course = models.ForeignKey("patients.TreatmentCourse", on_delete=models.CASCADE, related_name="monitoring_items")
    # No index of its own: (clinic, overdue_from) and (clinic, due_date) lead with it.
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False)
    requirement = models.ForeignKey(Requirement, on_delete=models.CASCADE, related_name="items")
    due_date = models.DateField(null=True, blank=True)
    overdue_from = models.DateField(null=True, blank=True, help_text="First day it counts as overdue (grace and snooze applied).")
    last_done = models.DateField(null=True, blank=True)
    notice = models.CharField(max_length=200, blank=True)
    snoozed_until = models.DateField(null=True, blank=True)
    flagged_at = models.DateTimeField(null=True, blank=True, help_text="When the job first saw it overdue.")
    computed_at = models.DateTimeField(auto_now=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["due_date"]
        constraints = [models.UniqueConstraint(fields=["course", "requirement"], name="one_item_per_requirement")]
        indexes = [
            # The worklist reads overdue and due-soon items in this order, 50 at a time (issue #14).
            # Covering: the worklist's and the digest's counts (overdue, due soon, per test,
            # escalation) are index-only scans of this index (issue #14).
            models.Index(fields=["clinic", "overdue_from", "id"], include=["due_date", "requirement"],
                         name="item_clinic_overdue_idx"),
            models.Index(fields=["overdue_from"], condition=Q(overdue_from__isnull=False), name="item_overdue_idx"),
            # With the key last, "most overdue first" (due date, then key) is read in index
            # order and stops at the page (no sort of a day's whole group).
            models.Index(fields=["clinic", "due_date", "id"], name="item_clinic_due_idx"),
            models.Index(fields=["clinic", "snoozed_until"], condition=Q(snoozed_until__isnull=False),
                         name="item_clinic_snoozed_idx"),
            # The tick's scan for items that became overdue visits only the unflagged ones, so
            # it stays flat as the flagged backlog grows (issue #14).
            models.Index(fields=["clinic", "overdue_from", "id"],
                         condition=Q(flagged_at__isnull=True, overdue_from__isnull=False), name="item_unflagged_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.requirement} due {self.due_date}"

    def status_on(self, today: date, due_soon_days: int = rules.DEFAULT_DUE_SOON_DAYS) -> str:
        """Status on `today` from the stored dates: not_required, ok, due_soon, overdue,
        or snoozed (past due, a follow-up recorded, snooze not over)."""
        return rules.status(self.due_date, today, due_soon_days=due_soon_days, snoozed_until=self.snoozed_until,
                            first_overdue=self.overdue_from)

    def days_overdue(self, today: date) -> int:
        return (today - self.due_date).days if self.due_date else 0


class FollowUp(AppendOnly):
    """A nurse's 'ordered' or 'patient contacted' on an item; snoozes it (at most 7 days)."""

    class Kind(models.TextChoices):
        ORDERED = "ordered", "Test ordered"
        CONTACTED = "contacted", "Patient contacted"

    MAX_SNOOZE_DAYS = 7
    DEFAULT_SNOOZE_DAYS = 3  # what the form offers

    item = models.ForeignKey(MonitoringItem, on_delete=models.PROTECT, related_name="follow_ups")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    note = models.CharField(max_length=300)
    snoozed_until = models.DateField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} until {self.snoozed_until}"


class DirtyPatient(models.Model):
    """Patients whose due dates must be recomputed by the next job run (the request that
    changed them could not, e.g. the database hiccuped after commit)."""

    patient_id = models.BigIntegerField(unique=True)
    marked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"patient {self.patient_id}"


class DigestQuerySet(ClinicScopedQuerySet["Digest"]):
    pass


class Digest(models.Model):
    """One reminder email to one person for one clinic and day: the outbox row.
    The unique constraint is what makes 'at most one a day' hold across retries,
    overlapping beats and several workers."""

    class Kind(models.TextChoices):
        DIGEST = "digest", "Daily digest"
        ESCALATION = "escalation", "Escalation"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    # With monitoring.rules.retry_delay the attempts span about four hours: a short mail
    # outage delays the day's digests, it does not lose them.
    MAX_ATTEMPTS = 10

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="digests")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="digests")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DIGEST)
    for_date = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="After a transient failure: not before.")
    last_error = models.TextField(blank=True)
    to_address = models.EmailField(blank=True)
    item_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = DigestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "clinic", "kind", "for_date"], name="one_digest_a_day"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="digest_status_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient} for {self.for_date} ({self.status})"


class NotificationPreference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference")
    digests_enabled = models.BooleanField(default=True, help_text="Receive the daily digest and escalations.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: digests {'on' if self.digests_enabled else 'off'}"
