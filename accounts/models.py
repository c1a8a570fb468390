"""Clinics, the people who work in them, and their roles.

A user belongs to one or more clinics through Membership, with one role in each. Every
patient-derived record hangs off a clinic, and every query a user makes is scoped to the
clinics they belong to (accounts.access).
"""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from protocols.errors import VersionConflict


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (for example Europe/London).")


class Role(models.TextChoices):
    NURSE = "nurse", "Nurse"
    PRESCRIBER = "prescriber", "Prescriber"
    STAFF = "staff", "Clinic staff"
    ADMIN = "admin", "Clinic admin"


class Clinic(models.Model):
    name = models.CharField(max_length=120, unique=True)
    code = models.SlugField(max_length=30, unique=True, help_text="Short code, shown in the navigation bar.")
    timezone = models.CharField(max_length=64, default="Europe/London", validators=[validate_timezone])
    capsule_strengths = models.JSONField(
        default=list, blank=True,
        help_text="Alectinib capsule strengths the pharmacy stocks, in mg; empty means 150 mg only (US/EU). "
                  "Japan also has 20 and 40 mg (reference §2).")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def strengths(self) -> list[int]:
        return sorted({int(s) for s in self.capsule_strengths} | {150})


class User(AbstractUser):
    """A person who signs in. Roles are per clinic, on Membership."""

    clinics = models.ManyToManyField(Clinic, through="Membership", related_name="users", blank=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def roles_in(self, clinic_id: int) -> set[str]:
        return {m.role for m in self._memberships() if m.clinic_id == clinic_id}

    def has_role(self, clinic_id: int, *roles: str) -> bool:
        return bool(self.roles_in(clinic_id) & set(roles))

    def clinic_ids(self) -> list[int]:
        return sorted({m.clinic_id for m in self._memberships()})

    def _memberships(self) -> list[Membership]:
        # Cached per request: the nav bar, the access gate and role checks all ask.
        if not hasattr(self, "_membership_cache"):
            self._membership_cache = list(self.memberships.select_related("clinic"))
        return self._membership_cache


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic", "role"], name="membership_unique_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.clinic}"


class HistoryIP(models.Model):
    """Where a change came from: the IP address on every history row (issue #12 item 6).
    A base of every HistoricalRecords; accounts.audit fills it from the request."""

    history_ip = models.GenericIPAddressField("from", null=True, blank=True)

    class Meta:
        abstract = True


class Versioned(models.Model):
    """Optimistic concurrency (issue #12 item 4): every save bumps `version`; a form
    carries the version it was read at, and a service refuses a post whose version is no
    longer current (VersionConflict) instead of applying it over someone else's change."""

    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            self.version = (self.version or 0) + 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
        super().save(*args, **kwargs)

    def check_version(self, read_at: int | None) -> None:
        """Call on the row locked for update, with the version the form was read at."""
        if read_at is None or int(read_at) != self.version:
            raise VersionConflict(
                f"This {self._meta.verbose_name} was changed by someone else after you opened the page "
                "(see its history). Nothing was saved: reload the page, check the record as it stands now "
                "and decide again.")


class AppendOnly(models.Model):
    """A record that is written once and never changed or deleted (a comment, a
    decision, a follow-up): its own row is its history (issue #12 item 6)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError(f"{self._meta.verbose_name} records are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{self._meta.verbose_name} records are append-only.")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def for_user(self, user) -> AuditEventQuerySet:
        """Clinic admins read their clinics' trail (reliability.md S8)."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        admin_of = [m.clinic_id for m in user._memberships() if m.role == Role.ADMIN]
        return self.filter(clinic_id__in=admin_of)


class AuditEvent(AppendOnly):
    """Who did what to which record, when and from where: every read of a patient's
    record, every export of patient data, every write, every refused request (HIPAA
    164.312(b); reliability.md S8). Rows are only ever inserted: the model refuses
    updates and deletes, the admin shows them read-only, and on PostgreSQL a trigger
    refuses UPDATE and DELETE (accounts migration 0003)."""

    class Action(models.TextChoices):
        VIEW = "view", "viewed"
        EXPORT = "export", "exported"
        CREATE = "create", "added"
        CHANGE = "change", "changed"
        TRIED = "tried", "tried to change (nothing saved)"
        REFUSED = "refused", "was refused"
        SIGN_IN = "sign_in", "signed in"
        # High severity: a grant, and every page read under it (reliability.md S16).
        BREAK_GLASS = "break_glass", "used emergency access to"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey("User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    username = models.CharField(max_length=150, blank=True, help_text="As it was at the time.")
    clinic = models.ForeignKey(Clinic, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    patient_id = models.PositiveIntegerField(null=True, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    what = models.CharField(max_length=200, help_text="The page or object, in words.")
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=300, blank=True, help_text="Without the query string: it may hold names.")
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["clinic", "-at"], name="audit_clinic_at_idx"),
            models.Index(fields=["patient_id", "-at"], name="audit_patient_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.username or 'anonymous'} {self.get_action_display()} {self.what}"


class EmergencyAccessQuerySet(models.QuerySet["EmergencyAccess"]):
    def active(self, now) -> EmergencyAccessQuerySet:
        """Grants in force at `now`: not ended early, deadline not reached."""
        return self.filter(ended_at__isnull=True, expires_at__gt=now)


class EmergencyAccess(AppendOnly):
    """Break-glass access (HIPAA 164.312(a)(2)(ii); reliability.md S16): a nurse or
    prescriber reads one patient of a clinic they are not a member of, for a typed
    reason, until `expires_at`. Only that patient's page, only reading (accounts.access
    get_patient_for_reading_or_404). Rows are only inserted; the one change allowed is
    ending a grant early, a conditional UPDATE of `ended_at` (accounts.emergency), which
    on PostgreSQL a trigger also holds to (accounts migration 0005)."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="emergency_accesses")
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+",
                               help_text="The patient's clinic, which the user is not a member of.")
    patient_id = models.PositiveIntegerField()
    reason = models.TextField(help_text="Why, as the user typed it.")
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="Granted for BREAK_GLASS_HOURS; the deadline is stored and queried.")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Ended early by the user.")

    objects = EmergencyAccessQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at", "-pk"]
        verbose_name = "emergency access"
        verbose_name_plural = "emergency accesses"
        indexes = [models.Index(fields=["user", "patient_id", "expires_at"], name="emergency_user_patient_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(expires_at__gt=models.F("granted_at")),
                                   name="emergency_access_time_boxed"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — emergency access to patient #{self.patient_id} of {self.clinic_id} until {self.expires_at}"

    @property
    def until(self):
        """When it stopped or stops: ended early, or the deadline."""
        return min(self.ended_at, self.expires_at) if self.ended_at else self.expires_at


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def for_user(self, user: User) -> ApiTokenQuerySet:
        """The tokens of the clinics where `user` is a clinic admin."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        return self.filter(clinic_id__in=[c for c in user.clinic_ids() if user.has_role(c, Role.ADMIN)])


class ApiToken(models.Model):
    """A REST API key (issue #15): issued by a clinic admin, for one clinic and one user
    (a person, or an account for an integration), named, with an expiry, revocable. Only
    a SHA-256 of the key is kept; the key is shown once, when it is issued. A request with
    it sees exactly what that user sees in that clinic, with that user's roles."""

    MAX_DAYS = 365

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens",
                             help_text="The requests act as this user, with their roles in the clinic.")
    name = models.CharField(max_length=80, help_text="What it is for, e.g. 'LIS interface'.")
    prefix = models.CharField(max_length=8, editable=False, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
