"""The desensitization protocol library (reference §9): published protocols, read-only,
and clinics' own, versioned. A plan pins the protocol row it was started with; editing a
clinic protocol makes a new version, so running plans never change under a patient."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from accounts.models import HistoryIP
from protocols.desensitization import Step


class ProtocolQuerySet(models.QuerySet["DesensitizationProtocol"]):
    def visible_to(self, user) -> ProtocolQuerySet:
        """The published library and the user's clinics' own protocols (latest versions)."""
        return self.filter(Q(clinic__isnull=True) | Q(clinic_id__in=user.clinic_ids()), superseded_by__isnull=True)


class DesensitizationProtocol(models.Model):
    class Setting(models.TextChoices):
        OUTPATIENT = "outpatient", "Outpatient"
        INPATIENT = "inpatient", "Inpatient"
        UNKNOWN = "", "Not reported"

    clinic = models.ForeignKey("accounts.Clinic", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="desensitization_protocols", help_text="Empty: the published library.")
    name = models.CharField(max_length=120)
    source = models.CharField(max_length=400)
    start_dose = models.CharField(max_length=60)
    final_dose = models.CharField(max_length=60)
    duration_days = models.PositiveSmallIntegerField(null=True, blank=True)
    adjunct = models.CharField(max_length=200, blank=True, help_text="e.g. prednisolone")
    setting = models.CharField(max_length=20, choices=Setting.choices, blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    successful = models.BooleanField(null=True)
    evidence = models.CharField(max_length=200, blank=True, help_text="e.g. [SEED] — not confirmed in primary sources")
    version = models.PositiveSmallIntegerField(default=1)
    copied_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies")
    superseded_by = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes")
    steps_approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="+")
    steps_approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = ProtocolQuerySet.as_manager()

    class Meta:
        ordering = ["clinic_id", "name", "-version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}" if self.clinic_id else self.name

    @property
    def step_list(self) -> list[Step]:
        return [Step(s.morning_mg, s.evening_mg, s.days) for s in self.steps.all()]

    @property
    def has_steps(self) -> bool:
        return bool(self.step_list)

    def why_not_startable(self) -> str:
        """Empty when a plan can use it; otherwise the reason, shown to the user."""
        if not self.has_steps:
            return ("Only a summary of this report is available (reference §9.2): its day-by-day steps could not be "
                    "found. A prescriber must copy it, enter the steps and approve them before a plan can use it.")
        if self.clinic_id is not None and self.steps_approved_by_id is None:
            return "A prescriber must approve this protocol's steps before a plan can use it."
        if self.superseded_by_id is not None:
            return "A newer version of this protocol exists."
        return ""


class DesensitizationStep(models.Model):
    protocol = models.ForeignKey(DesensitizationProtocol, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    morning_mg = models.PositiveSmallIntegerField()
    evening_mg = models.PositiveSmallIntegerField()
    days = models.PositiveSmallIntegerField()

    history = HistoricalRecords(bases=[HistoryIP])

    class Meta:
        ordering = ["order"]
        constraints = [models.UniqueConstraint(fields=["protocol", "order"], name="one_step_per_order")]

    def __str__(self) -> str:
        return f"{self.morning_mg}/{self.evening_mg} mg × {self.days} d"
