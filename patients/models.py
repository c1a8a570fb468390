"""One trustworthy record per patient: demographics, courses, dose history, labs, events.

Nothing here is hard-deleted through the UI; every change is kept by django-simple-history
(who, when, before/after) and shown to clinic admins on the patient page.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accounts.access import ClinicScopedQuerySet
from accounts.clinic_time import clinic_day_start, clinic_today
from accounts.models import AppendOnly, Clinic, HistoryIP, Versioned
from protocols import dates, oral_program
from protocols.analytes import ANALYTES, ratio_to_decimal, to_decimal
from protocols.dosing import Dose, DoseState, Reason
from protocols.labs import Lab, grade_lab

ANALYTE_CHOICES = [(a.code, a.label) for a in ANALYTES.values()]


class PatientQuerySet(ClinicScopedQuerySet["Patient"]):
    def active(self) -> PatientQuerySet:
        return self.filter(archived_at__isnull=True)

    def search(self, term: str) -> PatientQuerySet:
        term = term.strip()
        if not term:
            return self
        q = Q(mrn__icontains=term)
        for word in term.split():
            q |= Q(first_name__icontains=word) | Q(last_name__icontains=word)
        return self.filter(q)


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "X", "Other"
        UNKNOWN = "U", "Unknown"

    class AlkMethod(models.TextChoices):
        FISH = "FISH", "FISH"
        IHC = "IHC", "IHC"
        NGS = "NGS", "NGS"

    class AlkResult(models.TextChoices):
        POSITIVE = "positive", "Positive"
        NEGATIVE = "negative", "Negative"
        EQUIVOCAL = "equivocal", "Equivocal"

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=32, help_text="Medical record number, unique in the clinic.")
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=1, choices=Sex.choices)
    alk_test_method = models.CharField("ALK test method", max_length=4, choices=AlkMethod.choices, blank=True)
    alk_test_date = models.DateField("ALK test date", null=True, blank=True)
    alk_test_result = models.CharField("ALK test result", max_length=10, choices=AlkResult.choices, blank=True)
    diagnosis_date = models.DateField(null=True, blank=True)
    cns_metastases_at_baseline = models.BooleanField("CNS metastases at baseline", default=False)
    notes = models.TextField(blank=True)
    primary_nurse = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", help_text="The nurse who follows this patient.")
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "mrn"]
        constraints = [models.UniqueConstraint(fields=["clinic", "mrn"], name="patient_mrn_unique_per_clinic")]
        # The worklist's MRN search (MRN starts with, any case; issue #14) has a PostgreSQL
        # expression index, patient_mrn_prefix_idx (migration 0015).

    def __str__(self) -> str:
        return f"{self.last_name}, {self.first_name} ({self.mrn})"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class CourseQuerySet(ClinicScopedQuerySet["TreatmentCourse"]):
    clinic_lookup = "patient__clinic"

    def on_treatment(self) -> CourseQuerySet:
        """Courses whose patient still needs monitoring: started, not ended, not
        discontinued, patient not archived."""
        return self.filter(
            end_date__isnull=True,
            patient__archived_at__isnull=True,
        ).exclude(dose_state__in=[DoseState.DISCONTINUED, DoseState.NOT_STARTED])


class TreatmentCourse(Versioned):
    """One course of one drug. The dose state columns are kept consistent with the
    DoseChangeEvent rows in the same transaction (patients.services.dose_change_record)."""

    class Drug(models.TextChoices):
        ALECTINIB = "alectinib", "Alectinib"

    class Regime(models.TextChoices):
        # Reference §2 / A13: the 600/450/300 ladder applies to US/EU and JP adjuvant only.
        US = "us", "US label (600 mg BID)"
        EU = "eu", "EU label (600 mg BID)"
        JP_ADJUVANT = "jp_adjuvant", "Japan, adjuvant (600 mg BID)"
        JP_ADVANCED = "jp_advanced", "Japan, advanced NSCLC (300 mg BID) — ask the clinician"

    class EndReason(models.TextChoices):
        PROGRESSION = "progression", "Progression"
        TOXICITY = "toxicity", "Toxicity"
        DEATH = "death", "Death"
        OTHER = "other", "Other"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    drug = models.CharField(max_length=40, choices=Drug.choices, default=Drug.ALECTINIB)
    regime = models.CharField(max_length=20, choices=Regime.choices, default=Regime.US)
    start_date = models.DateField(help_text="Date of the first dose (day 0 of the monitoring schedule).")
    end_date = models.DateField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    # Current dose state, derived from the events and kept in step with them.
    dose_state = models.CharField(max_length=20, choices=[(s.value, s.value) for s in DoseState], default=DoseState.NOT_STARTED)
    dose_mg_bid = models.PositiveSmallIntegerField(null=True, blank=True)
    resume_dose_mg_bid = models.PositiveSmallIntegerField(null=True, blank=True)
    recovery_condition = models.JSONField(default=list, blank=True)
    # While withheld: the prescriber's recheck interval for the analytes of the recovery
    # condition (reference §4.1 "more frequent testing", §11: the prescriber sets it).
    recheck_every_days = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = CourseQuerySet.as_manager()

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="course_end_after_start",
            ),
            models.UniqueConstraint(
                fields=["patient", "drug"], condition=Q(end_date__isnull=True), name="one_open_course_per_drug"
            ),
        ]
        # The worklist's holds (issue #14): the few courses withheld among tens of thousands.
        indexes = [models.Index(fields=["patient"], condition=Q(dose_state="withheld", end_date__isnull=True),
                                name="course_withheld_idx")]

    def __str__(self) -> str:
        return f"{self.get_drug_display()} from {self.start_date}"

    @property
    def dose(self) -> Dose:
        return Dose(DoseState(self.dose_state), self.dose_mg_bid, self.resume_dose_mg_bid)

    @property
    def dose_label(self) -> str:
        return self.dose.label()

    @property
    def started_at(self) -> datetime:
        """The start of the course's first day on its clinic's clock (accounts.clinic_time)."""
        return clinic_day_start(self.patient.clinic, self.start_date)

    @property
    def is_active(self) -> bool:
        return self.end_date is None and self.dose_state not in (DoseState.DISCONTINUED, DoseState.NOT_STARTED)


class ConcomitantMedication(models.Model):
    """Medicines that can slow the heart; the bradycardia rules (§4.4) ask about them."""

    class Category(models.TextChoices):
        BETA_BLOCKER = "beta_blocker", "Beta-blocker"
        CCB = "ccb", "Calcium-channel blocker (non-dihydropyridine)"
        DIGOXIN = "digoxin", "Digoxin"
        CLONIDINE = "clonidine", "Clonidine"
        ANTIARRHYTHMIC = "antiarrhythmic", "Antiarrhythmic"
        OTHER = "other", "Other heart-rate-lowering drug"

    course = models.ForeignKey(TreatmentCourse, on_delete=models.CASCADE, related_name="medications")
    name = models.CharField(max_length=120)
    category = models.CharField(max_length=20, choices=Category.choices)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)

    history = HistoricalRecords(bases=[HistoryIP])

    class Meta:
        ordering = ["start_date"]

    def __str__(self) -> str:
        return self.name


class ReferenceRange(models.Model):
    """A clinic's default limits, used when a lab reports no ULN/LLN of its own."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="reference_ranges")
    analyte = models.CharField(max_length=30, choices=ANALYTE_CHOICES)
    uln = models.DecimalField("ULN", max_digits=12, decimal_places=4, null=True, blank=True)
    lln = models.DecimalField("LLN", max_digits=12, decimal_places=4, null=True, blank=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = ClinicScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clinic", "analyte"], name="one_range_per_analyte")]

    def __str__(self) -> str:
        return f"{self.clinic}: {self.get_analyte_display()}"


class LabQuerySet(ClinicScopedQuerySet["LabResult"]):
    clinic_lookup = "patient__clinic"


class CurrentLabManager(models.Manager.from_queryset(LabQuerySet)):  # type: ignore[misc]
    """The results in force: an amended or voided result stays stored and visible on the
    trail (LabResult.every), but nothing grades, schedules or recommends from it."""

    def get_queryset(self) -> LabQuerySet:
        return super().get_queryset().filter(status=LabResult.Status.FINAL)


class ResultIsAppendOnly(Exception):
    """A stored result's value, unit, limits, time or author cannot be changed in place:
    a correction is an amendment or a void (patients.services.lab_result_amend/void)."""


class LabResult(models.Model):
    """One value, in the canonical unit of its analyte, with the limits it was graded on.

    The numbers the laboratory reported are kept as reported (`reported_*`): grade and
    × ULN are derived from them exactly (`measurement()`), never from the rounded
    canonical columns, which are for display and sorting. `derive()` is the one place
    that sets the canonical and graded columns, and `save()` calls it for every new row.

    Results are append-only: once saved, what was measured never changes. A correction
    is a new row that `amends` the old one (status "amended"), or a void of the old one,
    each with a reason, who and when; the original stays on the trail."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Manual entry"
        IMPORT = "import", "Import"
        CSV = "csv", "CSV import"
        HL7 = "hl7", "HL7 v2 feed"
        FHIR = "fhir", "FHIR import"
        API = "api", "REST API"

    class Comparator(models.TextChoices):
        # A censored value (HL7 v2 SN, FHIR Quantity.comparator; reliability.md I3): the
        # number is a bound, kept as such, never coerced to a value.
        EXACT = "", "="
        BELOW = "<", "below"
        AT_MOST = "<=", "at most"
        ABOVE = ">", "above"
        AT_LEAST = ">=", "at least"

    class Status(models.TextChoices):
        FINAL = "final", "In force"
        AMENDED = "amended", "Corrected (replaced by an amendment)"
        VOIDED = "voided", "Voided"

    # What was measured: never updated once saved (ResultIsAppendOnly; a PostgreSQL trigger).
    MEASURED = ("patient_id", "analyte", "value", "unit", "reported_value", "reported_unit", "uln", "lln",
                "reported_uln", "reported_lln", "collected_at", "source", "is_baseline", "entered_by_id",
                "entered_at", "amends_id", "comparator", "lab_import_id")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="labs")
    analyte = models.CharField(max_length=30, choices=ANALYTE_CHOICES)
    value = models.DecimalField(max_digits=14, decimal_places=4)
    comparator = models.CharField(max_length=2, choices=Comparator.choices, blank=True, default="", db_default="")
    unit = models.CharField(max_length=20)
    reported_value = models.DecimalField(max_digits=14, decimal_places=4)
    reported_unit = models.CharField(max_length=20)
    uln = models.DecimalField("ULN", max_digits=14, decimal_places=4, null=True, blank=True)
    lln = models.DecimalField("LLN", max_digits=14, decimal_places=4, null=True, blank=True)
    # The limits as the laboratory reported them, in `reported_unit`; empty when the
    # clinic's default range (kept in the canonical unit) was used.
    reported_uln = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    reported_lln = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    collected_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    lab_import = models.ForeignKey("LabImport", null=True, blank=True, on_delete=models.PROTECT, related_name="results",
                                   help_text="The file or message this result came from (S15).")
    is_baseline = models.BooleanField(default=False)
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    grade_basis = models.CharField(max_length=200, blank=True)
    grading_version = models.CharField(max_length=20, blank=True)
    x_uln = models.DecimalField("× ULN", max_digits=12, decimal_places=3, null=True, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FINAL, db_default=Status.FINAL)
    amends = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="amended_by",
                                  help_text="The result this one corrects.")
    retired_reason = models.TextField("reason for the correction", blank=True, db_default="")
    retired_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name="corrected by")
    retired_at = models.DateTimeField("corrected at", null=True, blank=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = CurrentLabManager()
    every = LabQuerySet.as_manager()  # in force, amended and voided: for the trail

    class Meta:
        ordering = ["-collected_at", "analyte"]
        base_manager_name = "every"
        constraints = [
            models.UniqueConstraint(fields=["patient", "analyte", "collected_at"], condition=Q(status="final"),
                                    name="lab_unique_per_time"),
        ]
        indexes = [
            models.Index(fields=["patient", "analyte", "-collected_at"], name="lab_latest_idx"),
            # The worklist's "grade 3 or more, last 14 days" (issue #14): a few rows among millions.
            models.Index(fields=["-collected_at", "-id"], condition=Q(grade__gte=3, status="final"),
                         name="lab_high_grade_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_analyte_display()} {self.comparator}{self.reported_value.normalize():f} {self.reported_unit}"

    def save(self, *args, **kwargs) -> None:
        if self._state.adding:
            if not getattr(self, "_derived", False):
                self.derive(self.patient_baseline())
        elif self.pk is not None:
            stored = LabResult.every.filter(pk=self.pk).values(*self.MEASURED).first()
            if stored and any(stored[f] != getattr(self, f) for f in self.MEASURED):
                raise ResultIsAppendOnly(f"Result #{self.pk} cannot be changed in place: amend or void it.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ResultIsAppendOnly("Results are never deleted: void them with a reason.")

    @property
    def in_force(self) -> bool:
        return self.status == self.Status.FINAL

    def measurement(self) -> Lab:
        """The exact result the rules and the grading use (protocols.labs): the reported
        numbers with exact factors; a clinic default limit is already canonical."""
        factor = ANALYTES[self.analyte].factor(self.reported_unit)

        def limit(reported: Decimal | None, canonical: Decimal | None) -> Fraction | None:
            if reported is not None:
                return Fraction(reported) * factor
            return Fraction(canonical) if canonical is not None else None

        return Lab(Fraction(self.reported_value) * factor, limit(self.reported_uln, self.uln),
                   limit(self.reported_lln, self.lln), self.collected_at)

    def derive(self, baseline: Lab | None = None) -> None:
        """Set the canonical value and limits and the grade and × ULN from the reported
        numbers (reference §8; protocols.labs.grade_lab): the only place they are set."""
        analyte = ANALYTES[self.analyte]
        self.unit = analyte.unit
        measured = self.measurement()
        self.value = to_decimal(measured.value)
        self.uln = to_decimal(measured.uln) if measured.uln is not None else None
        self.lln = to_decimal(measured.lln) if measured.lln is not None else None
        grading = grade_lab(self.analyte, measured, None if self.is_baseline else baseline)
        self.grade, self.grade_basis, self.grading_version = grading.grade, grading.basis, grading.version
        if self.comparator:
            # A bound is graded as the bound, and says so: the true value is beyond it (I3).
            side = "higher" if self.comparator.startswith(">") else "lower"
            self.grade_basis = f"{self.grade_basis}; censored value {self.comparator}{self.reported_value.normalize():f}, " \
                               f"graded at the bound (the true value may be {side})"[:200]
        self.x_uln = ratio_to_decimal(grading.x_uln) if grading.x_uln is not None else None

    def patient_baseline(self) -> Lab | None:
        """The patient's own pre-treatment value of this analyte in force (the latest)."""
        if self.is_baseline:
            return None
        lab = (LabResult.objects.filter(patient_id=self.patient_id, analyte=self.analyte, is_baseline=True)
               .order_by("-collected_at").first())
        return lab.measurement() if lab else None


class EventQuerySet(ClinicScopedQuerySet["ClinicalEvent"]):
    clinic_lookup = "patient__clinic"


class ClinicalEvent(models.Model):
    class Kind(models.TextChoices):
        ILD = "ild", "ILD / pneumonitis"
        BRADYCARDIA = "bradycardia", "Bradycardia"
        MYALGIA = "myalgia", "Myalgia"
        RASH = "rash", "Rash"
        HEMOLYSIS = "hemolysis", "Hemolytic anemia"
        CNS_PROGRESSION = "cns_progression", "CNS progression"
        GI_PERFORATION = "gi_perforation", "GI perforation"
        CHOLESTASIS = "cholestasis", "Cholestasis (documented)"
        RESPIRATORY = "respiratory", "Respiratory symptoms, new or worse (investigate for ILD)"
        OTHER = "other", "Other"

    class Bradycardia(models.TextChoices):
        ASYMPTOMATIC = "asymptomatic", "Asymptomatic"
        SYMPTOMATIC = "symptomatic", "Symptomatic, not life-threatening"
        LIFE_THREATENING = "life_threatening", "Life-threatening"

    class Scar(models.TextChoices):
        NONE = "", "None"
        SJS = "sjs", "Stevens-Johnson syndrome (SJS)"
        TEN = "ten", "Toxic epidermal necrolysis (TEN)"
        DRESS = "dress", "DRESS"
        AGEP = "agep", "AGEP"

    class Causality(models.TextChoices):
        UNDER_INVESTIGATION = "investigating", "Under investigation"
        TREATMENT_RELATED = "treatment_related", "Treatment-related, no other cause"
        OTHER_CAUSE = "other_cause", "Other cause identified"

    class Hemolysis(models.TextChoices):
        SUSPECTED = "suspected", "Suspected (work-up under way)"
        CONFIRMED = "confirmed", "Confirmed"
        NOT_CONFIRMED = "not_confirmed", "Not confirmed"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    onset_date = models.DateField()
    resolved_date = models.DateField(null=True, blank=True)
    grade = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(g, f"Grade {g}") for g in range(1, 6)], help_text="CTCAE v5.0 grade"
    )
    grading_version = models.CharField(max_length=20, default="CTCAE v5.0")
    bradycardia = models.CharField(max_length=20, choices=Bradycardia.choices, blank=True)
    contributing_medication = models.BooleanField(
        default=False, help_text="A heart-rate-lowering medicine was identified as contributing."
    )
    contributing_medication_adjusted = models.BooleanField(
        default=False, help_text="That medicine was stopped or its dose adjusted."
    )
    rash_bsa_percent = models.PositiveSmallIntegerField("Rash BSA %", null=True, blank=True)
    scar = models.CharField("Severe cutaneous adverse reaction", max_length=10, choices=Scar.choices, blank=True)
    blistering_or_mucosal = models.BooleanField("Blistering or mucosal involvement", default=False)
    ild_causality = models.CharField("ILD causality", max_length=20, choices=Causality.choices, blank=True)
    hemolysis_status = models.CharField(max_length=20, choices=Hemolysis.choices, blank=True)
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-onset_date", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.onset_date}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for check in (self._date_problems, self._bradycardia_problems, self._rash_problems, self._status_problems):
            errors.update(check())
        if errors:
            raise ValidationError(errors)

    def _date_problems(self) -> dict[str, str]:
        """The one date rule (protocols.dates) on the patient's clinic's calendar."""
        errors: dict[str, str] = {}
        patient = getattr(self, "patient", None) if self.patient_id else None
        today = clinic_today(patient.clinic) if patient is not None else timezone.localdate()
        born = patient.date_of_birth if patient is not None else None
        for name in ("onset_date", "resolved_date"):
            value = getattr(self, name)
            if value and (problem := dates.date_problem(value, today=today, born=born)):
                errors[name] = problem
        if self.resolved_date and self.onset_date and self.resolved_date < self.onset_date:
            errors.setdefault("resolved_date", "The event cannot resolve before its onset.")
        return errors

    def _bradycardia_problems(self) -> dict[str, str]:
        if self.kind != self.Kind.BRADYCARDIA:
            if self.bradycardia or self.contributing_medication or self.contributing_medication_adjusted:
                return {"bradycardia": "Bradycardia details belong to a bradycardia event."}
            return {}
        errors: dict[str, str] = {}
        # Sinus bradycardia is graded from symptoms, never from the rate (reference §8.5).
        if not self.bradycardia:
            errors["bradycardia"] = "Say whether the bradycardia is asymptomatic, symptomatic or life-threatening."
        expected = {"asymptomatic": {1}, "symptomatic": {2, 3}, "life_threatening": {4}}.get(self.bradycardia)
        if expected and self.grade is not None and self.grade not in expected:
            errors["grade"] = (f"{self.get_bradycardia_display()} bradycardia is CTCAE grade "
                               f"{'/'.join(map(str, sorted(expected)))} (reference §8.5).")
        if self.contributing_medication_adjusted and not self.contributing_medication:
            errors["contributing_medication_adjusted"] = "Only a contributing medicine can be stopped or adjusted."
        return errors

    def _rash_problems(self) -> dict[str, str]:
        if self.kind != self.Kind.RASH:
            if self.rash_bsa_percent is not None or self.scar or self.blistering_or_mucosal:
                return {"rash_bsa_percent": "Rash details belong to a rash event."}
            return {}
        errors: dict[str, str] = {}
        if self.rash_bsa_percent is not None and self.rash_bsa_percent > 100:
            errors["rash_bsa_percent"] = "BSA is a percentage from 0 to 100."
        if self.grade == 4 and not self.scar:
            errors["grade"] = ("Rash maculo-papular has no Grade 4 in CTCAE v5.0 (reference §8.6); record SJS/TEN/DRESS "
                               "if present.")
        return errors

    def _status_problems(self) -> dict[str, str]:
        """ILD causality and hemolysis status: required on their own kind, refused on others."""
        errors: dict[str, str] = {}
        for kind, field, missing, misplaced in (
            (self.Kind.ILD, "ild_causality",
             "Record the causality: under investigation, treatment-related, or other cause (reference §4.2).",
             "Causality is recorded for ILD / pneumonitis events."),
            (self.Kind.HEMOLYSIS, "hemolysis_status",
             "Record whether hemolysis is suspected, confirmed or not confirmed (reference §4.6).",
             "The hemolysis status belongs to a hemolytic anemia event."),
        ):
            value = getattr(self, field)
            if self.kind == kind and not value:
                errors[field] = missing
            elif self.kind != kind and value:
                errors[field] = misplaced
        return errors

    @property
    def is_scar(self) -> bool:
        return self.scar in (self.Scar.SJS, self.Scar.TEN, self.Scar.DRESS)


class DoseEventQuerySet(ClinicScopedQuerySet["DoseChangeEvent"]):
    clinic_lookup = "course__patient__clinic"


class DoseChangeEvent(models.Model):
    """One transition of the dose state machine (protocols.dosing). The reduction
    history is these rows; the course's dose columns mirror the latest one."""

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="dose_events")
    from_state = models.CharField(max_length=20)
    from_dose_mg_bid = models.PositiveSmallIntegerField(null=True, blank=True)
    to_state = models.CharField(max_length=20)
    to_dose_mg_bid = models.PositiveSmallIntegerField(null=True, blank=True)
    resume_dose_mg_bid = models.PositiveSmallIntegerField(null=True, blank=True)
    recovery_condition = models.JSONField(default=list, blank=True)
    recheck_every_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="While withheld: recheck the analytes of the recovery condition this often.")
    effective_date = models.DateField()
    reason = models.CharField(max_length=20, choices=[(r.value, r.value.replace("_", " ")) for r in Reason])
    toxicity = models.CharField(max_length=80, blank=True, help_text="The toxicity, e.g. ALT increased")
    toxicity_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    triggering_lab = models.ForeignKey(LabResult, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    triggering_event = models.ForeignKey(
        ClinicalEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = DoseEventQuerySet.as_manager()

    class Meta:
        ordering = ["effective_date", "pk"]

    def __str__(self) -> str:
        return f"{self.from_label} → {self.to_label} on {self.effective_date}"

    @property
    def from_label(self) -> str:
        return Dose(DoseState(self.from_state), self.from_dose_mg_bid).label()

    @property
    def to_label(self) -> str:
        return Dose(DoseState(self.to_state), self.to_dose_mg_bid, self.resume_dose_mg_bid).label()


class RecommendationQuerySet(ClinicScopedQuerySet["Recommendation"]):
    clinic_lookup = "course__patient__clinic"

    def pending(self) -> RecommendationQuerySet:
        return self.filter(status=Recommendation.Status.PENDING)

    def supersede(self) -> int:
        """Mark the pending ones superseded one by one, so that each change is on the
        patient's audit trail (a queryset update would leave no history row)."""
        n = 0
        for rec in self.pending().select_for_update():
            rec.status = Recommendation.Status.SUPERSEDED
            rec.save(update_fields=["status"])
            n += 1
        return n


class Recommendation(models.Model):
    """What the label says to do after new results or events (protocols.engine), and what
    the prescriber decided. Nothing changes a dose until a prescriber accepts."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a prescriber"
        ACCEPTED = "accepted", "Accepted"
        OVERRIDDEN = "overridden", "Overridden"
        SUPERSEDED = "superseded", "Superseded"

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="recommendations")
    action = models.CharField(max_length=20)
    output = models.JSONField(help_text="The engine's output, as shown to the prescriber.")
    inputs = models.JSONField(help_text="The case the engine was given.")
    trigger_key = models.CharField(max_length=200)
    triggering_lab = models.ForeignKey(LabResult, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    triggering_event = models.ForeignKey(ClinicalEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    chosen_option = models.PositiveSmallIntegerField(null=True, blank=True)
    decision_note = models.TextField(blank=True, help_text="Required when overriding.")
    dose_event = models.OneToOneField(
        DoseChangeEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="recommendation"
    )

    history = HistoricalRecords(bases=[HistoryIP])
    objects = RecommendationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["course", "trigger_key"], name="one_recommendation_per_trigger")]
        indexes = [models.Index(fields=["status", "course"], name="rec_status_idx")]

    def __str__(self) -> str:
        return f"{self.headline} ({self.get_status_display()})"

    @property
    def headline(self) -> str:
        o = self.output
        if self.action == "withhold":
            verb = "Keep withholding, now stricter" if o.get("hold_changed") else "Withhold"
            if o.get("resume_dose_mg_bid"):
                how = "the same dose" if o.get("resume") == "same" else "a reduced dose"
                return f"{verb}; resume at {o['resume_dose_mg_bid']} mg twice daily ({how}) on recovery"
            return f"{verb}; the prescriber decides the resume dose on the result of the work-up"
        if self.action == "resume":
            return f"Resume at {o.get('resume_dose_mg_bid')} mg twice daily: the recovery condition is met"
        if self.action == "discontinue":
            return "Discontinue alectinib permanently"
        if self.action == "clinician_decision":
            return "The label leaves the choice to the prescriber"
        if self.action == "review" and any(r.get("id") == "ILD-SYMPTOMS" for r in o.get("rules", [])):
            return "Investigate promptly for ILD / pneumonitis (reference §4.2); no dose change is suggested"
        if self.action == "review":
            return "Prescriber review: the label has no rule for this; no dose change is suggested"
        return self.action

    @property
    def asks_recheck(self) -> bool:
        """A hold whose recovery waits for laboratory values: the prescriber sets how
        often to recheck them (reference §4.1, §11)."""
        return any(o.get("action") == "withhold" and any(isinstance(c.get("analyte"), str) for c in o.get("resume_when", []))
                   for o in self.options)

    @property
    def options(self) -> list[dict]:
        return self.output.get("options") or [self.output]


class RecommendationComment(AppendOnly):
    recommendation = models.ForeignKey(Recommendation, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:40]}"


class PlanQuerySet(ClinicScopedQuerySet["DesensitizationPlan"]):
    clinic_lookup = "course__patient__clinic"

    def running(self) -> PlanQuerySet:
        return self.filter(status__in=[DesensitizationPlan.Status.ACTIVE, DesensitizationPlan.Status.PAUSED])


class DesensitizationPlan(Versioned):
    """A patient's re-challenge after a resolved rash (reference §9), on a pinned
    protocol version, approved by a prescriber; its days are materialized at approval."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Running"
        PAUSED = "paused", "Paused — a prescriber decides"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="desensitization_plans")
    protocol = models.ForeignKey("protocols.DesensitizationProtocol", on_delete=models.PROTECT, related_name="plans")
    rash_event = models.ForeignKey(ClinicalEvent, on_delete=models.PROTECT, related_name="+")
    start_date = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    strengths = models.JSONField(default=list, help_text="Capsule strengths the plan was approved with (mg).")
    final_dose_mg_bid = models.PositiveSmallIntegerField()
    override_reason = models.TextField(blank=True, help_text="Why a re-challenge goes ahead despite AGEP, blistering or "
                                                             "mucosal involvement (prescriber override, §9.3).")
    # Reference §9.3 requirement 4: record concurrent steroids, prior checkpoint inhibitor and washout.
    corticosteroid = models.CharField(max_length=120, blank=True, help_text="Concurrent corticosteroid, e.g. prednisolone 20 mg daily.")
    prior_checkpoint_inhibitor = models.BooleanField(default=False, help_text="Previously treated with a PD-1/PD-L1 inhibitor.")
    checkpoint_inhibitor_last_dose = models.DateField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(auto_now_add=True)
    pause_reason = models.TextField(blank=True)
    outcome = models.TextField(blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["-approved_at"]
        constraints = [
            models.UniqueConstraint(fields=["course"], condition=Q(status__in=["active", "paused"]),
                                    name="one_running_plan_per_course"),
        ]

    def __str__(self) -> str:
        return f"Desensitization ({self.protocol}) from {self.start_date}"

    @property
    def patient(self) -> Patient:
        """The plan's patient: the patient of its course (stored once)."""
        return self.course.patient

    @property
    def n_steps(self) -> int:
        return len(self.protocol.step_list)


class PlanDay(models.Model):
    plan = models.ForeignKey(DesensitizationPlan, on_delete=models.CASCADE, related_name="days")
    number = models.PositiveSmallIntegerField()
    date = models.DateField()
    step = models.PositiveSmallIntegerField()
    morning_mg = models.PositiveSmallIntegerField()
    evening_mg = models.PositiveSmallIntegerField()
    morning_taken = models.BooleanField(null=True)
    evening_taken = models.BooleanField(null=True)
    reaction = models.BooleanField(default=False)
    reaction_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(null=True, blank=True)
    cancelled = models.BooleanField(default=False, help_text="Replaced by a prescriber's decision (repeat, step back, restart).")

    history = HistoricalRecords(bases=[HistoryIP])

    class Meta:
        ordering = ["date", "number"]
        indexes = [models.Index(fields=["plan", "date"], name="planday_plan_date_idx")]

    def __str__(self) -> str:
        return f"Day {self.number} ({self.date}): {self.morning_mg}/{self.evening_mg} mg"

    @property
    def recorded(self) -> bool:
        return self.recorded_at is not None


class PlanDecision(AppendOnly):
    class Decision(models.TextChoices):
        CONTINUE = "continue", "Continue as planned (from the next step day)"
        REPEAT = "repeat", "Repeat the current step"
        STEP_BACK = "step_back", "Step back one step"
        RESTART = "restart", "Restart from step 1"
        STOP = "stop", "Stop: re-challenge failed"

    plan = models.ForeignKey(DesensitizationPlan, on_delete=models.CASCADE, related_name="decisions")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    reason = models.TextField()
    resume_on = models.DateField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["decided_at"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} ({self.decided_at:%Y-%m-%d})"


# --- Results that arrive: imports, the HL7 feed, the API (issue #15) ------------------------


class LabImportQuerySet(ClinicScopedQuerySet["LabImport"]):
    pass


class LabImport(models.Model):
    """One file, message or API call that brought results, kept as received (with its
    SHA-256) before anything is read from it, and linked to the results it produced
    (reliability.md S15). Its outcomes, line by line, are what the dry run showed and
    what the commit did."""

    class Kind(models.TextChoices):
        CSV = "csv", "CSV file"
        HL7 = "hl7", "HL7 v2 message"
        FHIR = "fhir", "FHIR Bundle"
        API = "api", "REST API"

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        CHECKING = "checking", "Checking"
        CHECKED = "checked", "Checked (dry run): waiting for confirmation"
        DRY_RUN = "dry_run", "Dry run only (sent to the API; nothing saved)"
        COMMITTING = "committing", "Saving"
        DONE = "done", "Saved"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    clinic = models.ForeignKey(Clinic, null=True, blank=True, on_delete=models.PROTECT, related_name="lab_imports",
                               help_text="Empty when a message named no clinic this app knows.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=200, blank=True, help_text="File name, or the message control ID.")
    sha256 = models.CharField(max_length=64, db_index=True)
    content = models.BinaryField(help_text="As received, byte for byte.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.RECEIVED)
    options = models.JSONField(default=dict, blank=True, help_text="Column mapping, date format, encoding.")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    outcomes = models.JSONField(default=list, blank=True, help_text="[line, outcome, field, reason, mrn, test] per row.")
    error = models.TextField(blank=True)
    ack_code = models.CharField(max_length=2, blank=True, help_text="HL7: AA, AE or AR as answered.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = LabImportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "-created_at"], name="labimport_clinic_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name or self.pk} ({self.get_state_display().lower()})"




class AnalyteAliasQuerySet(ClinicScopedQuerySet["AnalyteAlias"]):
    pass


class AnalyteAlias(models.Model):
    """A clinic's local name for a test ("Leberwert 1"), remembered once a clinic admin
    has said which analyte it is; LOINC codes are matched first (protocols.codes)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="analyte_aliases")
    name = models.CharField(max_length=80, help_text="As the laboratory writes it; matched without case, spaces or "
                                                     "punctuation.")
    key = models.CharField(max_length=80, editable=False, help_text="The name as matched (AnalyteAlias.key_of).")
    analyte = models.CharField(max_length=30, choices=ANALYTE_CHOICES)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[HistoryIP])
    objects = AnalyteAliasQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["clinic", "key"], name="alias_unique_per_clinic")]
        verbose_name_plural = "analyte aliases"

    def __str__(self) -> str:
        return f"{self.name} → {self.get_analyte_display()}"

    def save(self, *args, **kwargs) -> None:
        self.key = self.key_of(self.name)
        super().save(*args, **kwargs)

    @staticmethod
    def key_of(name: str) -> str:
        """The name as matched: compatibility-normalised (full-width letters, non-breaking
        hyphens), without case, and letters and digits only (no spaces, dots, dashes or
        invisible characters), so that "A.L.T", "ＡＬＴ" and "ALT" are one name."""
        return "".join(ch for ch in unicodedata.normalize("NFKC", name).casefold() if ch.isalnum())


class ImportMappingQuerySet(ClinicScopedQuerySet["ImportMapping"]):
    pass


class ImportMapping(models.Model):
    """The column mapping a clinic chose for a CSV layout (its header row), offered again
    the next time a file with the same header arrives."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="import_mappings")
    header_key = models.CharField(max_length=64, help_text="SHA-256 of the header row.")
    mapping = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ImportMappingQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clinic", "header_key"], name="mapping_unique_per_header")]

    def __str__(self) -> str:
        return f"Mapping {self.header_key[:8]} for {self.clinic}"


# --- the oral therapy program (issue #16) ----------------------------------------------------------

class ProgramQuerySet(ClinicScopedQuerySet):
    clinic_lookup = "course__patient__clinic"


class EducationRecord(AppendOnly):
    """The education checklist completed with the patient before the first dose (or again
    after a dose change): which topics were covered, at which dose, by whom and when.
    Topics and their sources: protocols.oral_program.topics (reference §2, §6)."""

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="education")
    given_on = models.DateField()
    topics = models.JSONField(default=list, help_text="Codes of the topics covered.")
    dose_mg_bid = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The dose the patient was taught.")
    with_whom = models.CharField(max_length=120, blank=True, help_text="Patient, carer, interpreter…")
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = ProgramQuerySet.as_manager()

    class Meta:
        ordering = ["-given_on", "-pk"]

    def __str__(self) -> str:
        return f"Education on {self.given_on}"


class SupplyRecord(models.Model):
    """What a prescription and a dispensing share: capsules of one strength on a date, who
    recorded them, and, when entered in error, why they were withdrawn (kept, never deleted)."""

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="%(class)ss")
    capsules = models.PositiveIntegerField()
    strength_mg = models.PositiveSmallIntegerField(default=150)
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    void_reason = models.CharField(max_length=300, blank=True, help_text="Why the record was withdrawn (entered in error).")

    history = HistoricalRecords(bases=[HistoryIP], inherit=True)
    objects = ProgramQuerySet.as_manager()

    class Meta:
        abstract = True


class Prescription(SupplyRecord):
    """A prescription written: the app chases it until a dispensing is recorded."""

    written_on = models.DateField()

    class Meta:
        ordering = ["-written_on", "-pk"]

    def __str__(self) -> str:
        return f"Prescription of {self.capsules} × {self.strength_mg} mg on {self.written_on}"


class Dispensing(SupplyRecord):
    """Capsules handed to the patient (the fill of a prescription)."""

    dispensed_on = models.DateField()

    class Meta:
        ordering = ["-dispensed_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.capsules} × {self.strength_mg} mg dispensed on {self.dispensed_on}"


class CheckIn(AppendOnly):
    """A structured contact (phone or visit): doses missed, symptoms graded with CTCAE
    v5.0 (reference §8.3, §8.6, §8.7), medicines that slow the heart, capsules on hand and
    the nurse's plan. `findings` keeps what the rules made of it (protocols.oral_program)
    and what the app did: the events, medicines and tests it led to."""

    class Mode(models.TextChoices):
        PHONE = "phone", "Phone"
        VISIT = "visit", "Visit"

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="check_ins")
    done_on = models.DateField()
    mode = models.CharField(max_length=10, choices=Mode.choices)
    due_on = models.DateField(null=True, blank=True, help_text="The check-in's due date when it was done.")
    on_time = models.BooleanField(null=True, blank=True, help_text="Done by its due date (plus the clinic's grace days).")
    missed_doses = models.PositiveSmallIntegerField(default=0, help_text="Doses missed since the last contact.")
    missed_reason = models.CharField(max_length=300, blank=True)
    vomited_doses = models.PositiveSmallIntegerField(default=0)
    symptoms = models.JSONField(default=dict, blank=True, help_text="CTCAE v5.0 grade by term code.")
    respiratory_new_or_worse = models.BooleanField(default=False)
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    new_medicine = models.CharField(max_length=120, blank=True)
    new_medicine_category = models.CharField(max_length=20, choices=ConcomitantMedication.Category.choices, blank=True)
    stopped_medicines = models.CharField(max_length=300, blank=True)
    capsules_on_hand = models.PositiveIntegerField(null=True, blank=True)
    plan = models.TextField(blank=True)
    findings = models.JSONField(default=list, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = ProgramQuerySet.as_manager()

    class Meta:
        ordering = ["-done_on", "-pk"]
        indexes = [models.Index(fields=["course", "done_on"], name="checkin_course_idx")]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} check-in on {self.done_on}"


class ProgramStatus(models.Model):
    """Each active course's oral-program state as last computed, stored so the worklist
    filters on it in the database with an index (issue #14): the supply
    (protocols.oral_program.supply) and whether the education is missing or was given at
    another dose. Recomputed on every change of the record (a dispensing, a prescription, a
    dose change, a desensitization day, a check-in, an education) and by the daily sweep."""

    class Education(models.TextChoices):
        DONE = "", "Recorded at the current dose"
        MISSING = "missing", "No education recorded"
        DOSE_CHANGED = "dose_changed", "Dose changed since the education"

    course = models.OneToOneField(TreatmentCourse, on_delete=models.CASCADE, related_name="program_status")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+", db_index=False)
    on_hand = models.PositiveIntegerField(null=True, blank=True)
    runs_out_on = models.DateField(null=True, blank=True)
    unfilled_since = models.DateField(null=True, blank=True, help_text="Oldest prescription with no dispensing since.")
    pdc = models.DecimalField("proportion of days covered", max_digits=5, decimal_places=4, null=True, blank=True)
    education = models.CharField(max_length=20, choices=Education.choices, blank=True, default="")
    taught_dose_mg_bid = models.PositiveSmallIntegerField(null=True, blank=True)
    computed_on = models.DateField()

    objects = ClinicScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "program statuses"
        indexes = [
            models.Index(fields=["clinic", "runs_out_on"], condition=Q(runs_out_on__isnull=False), name="program_runs_out_idx"),
            models.Index(fields=["clinic", "unfilled_since"], condition=Q(unfilled_since__isnull=False),
                         name="program_unfilled_idx"),
            models.Index(fields=["clinic", "id"], condition=~Q(education=""), name="program_education_idx"),
        ]

    def __str__(self) -> str:
        return f"Oral program of {self.course}"

    def runs_out_soon(self, today: date) -> bool:
        """Runs out within the issue's 7 days (protocols.oral_program), or already out."""
        return self.runs_out_on is not None and self.runs_out_on <= today + timedelta(days=oral_program.RUNS_OUT_WARNING_DAYS)

    def ran_out(self, today: date) -> bool:
        return self.runs_out_on is not None and self.runs_out_on <= today
