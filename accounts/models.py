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
