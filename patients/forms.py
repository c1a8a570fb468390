from __future__ import annotations

from datetime import date, datetime

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Hidden, Submit
from django import forms
from django.utils import timezone

from accounts.clinic_time import clinic_today
from accounts.models import Clinic, User
from patients.models import ClinicalEvent, ConcomitantMedication, Patient, TreatmentCourse
from patients.services import LabEntry
from protocols import dates
from protocols.analytes import ANALYTES
from protocols.dosing import LADDER, Dose, DoseState, Reason

# A browser's date control accepts only ISO values: "22/11/2026" (the en-gb format) would
# show as empty and an untouched save would erase the date.
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def version_field() -> forms.IntegerField:
    """The version of the course or plan the page was read at (issue #12 item 4)."""
    return forms.IntegerField(widget=forms.HiddenInput, min_value=1, error_messages={
        "required": "This page is out of date (it carries no version of the record): reload it and try again."})


class CrispyMixin:
    submit_label = "Save"

    def _post_clean(self):
        """A hidden field's error (a stale or missing version) is shown above the form:
        the field itself is not on the page."""
        super()._post_clean()
        for name, field in self.fields.items():
            if field.widget.is_hidden and name in self._errors:
                for message in self._errors.pop(name):
                    self.add_error(None, message)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", self.submit_label))


CONFIRM_DATES = "confirm_dates"


class SaneDatesMixin:
    """The one date rule (protocols.dates) on every date or time field a user types.

    `past_dates`: something that happened (not in the future, not before birth or 1900);
    `planned_dates`: may lie ahead, up to a year; `course_dates`: also a warning when more
    than a year before the patient's first course, which the user overrides by ticking
    "I confirm this date" (the box appears with the warning). Put the mixin before the
    Django form class; pass `patient=` when the form is about one.
    """

    past_dates: tuple[str, ...] = ()
    planned_dates: tuple[str, ...] = ()
    course_dates: tuple[str, ...] = ()

    def __init__(self, *args, patient: Patient | None = None, **kwargs):
        self.patient = patient
        super().__init__(*args, **kwargs)
        if self.is_bound and self.add_prefix(CONFIRM_DATES) in self.data:
            self._offer_confirmation()

    def _offer_confirmation(self) -> None:
        self.fields.setdefault(CONFIRM_DATES, forms.BooleanField(
            required=False, label="I confirm this date", widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
            help_text="Tick only after checking the date against the source (the lab report, the notes)."))

    def dates_today(self) -> date:
        # The patient's clinic's calendar (accounts.clinic_time), as the rest of the app.
        return clinic_today(self.patient.clinic) if self.patient is not None else timezone.localdate()

    def dates_born(self, data: dict) -> date | None:
        return self.patient.date_of_birth if self.patient is not None else None

    def clean(self):
        data = super().clean()
        today, now, born = self.dates_today(), timezone.now(), self.dates_born(data)
        confirmed = bool(data.pop(CONFIRM_DATES, False))
        for name in (*self.past_dates, *self.planned_dates):
            value = data.get(name)
            if value is None:
                continue
            if isinstance(value, datetime):
                problem = dates.datetime_problem(value, now=now, born=born)
            else:
                problem = dates.date_problem(value, today=today, born=born, planned=name in self.planned_dates)
            if problem:
                self.add_error(name, problem)  # also drops it from cleaned_data
        first_course = (self.patient.courses.order_by("start_date").values_list("start_date", flat=True).first()
                        if self.patient is not None and self.course_dates else None)
        for name in self.course_dates:
            value = data.get(name)
            if value is None or confirmed:
                continue
            warning = dates.long_before_course(value.date() if isinstance(value, datetime) else value,
                                               course_start=first_course)
            if warning:
                self._offer_confirmation()
                self.add_error(name, warning)
        return data


class PatientForm(SaneDatesMixin, CrispyMixin, forms.ModelForm):
    """Explicit fields only: clinic, archive state and audit columns cannot be posted (I9)."""

    past_dates = ("alk_test_date", "diagnosis_date")

    class Meta:
        model = Patient
        fields = [
            "clinic", "mrn", "first_name", "last_name", "date_of_birth", "sex",
            "alk_test_method", "alk_test_date", "alk_test_result", "diagnosis_date",
            "cns_metastases_at_baseline", "primary_nurse", "notes",
        ]
        widgets = {"date_of_birth": DATE, "alk_test_date": DATE, "diagnosis_date": DATE}

    def __init__(self, *args, clinics, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics
        self.fields["clinic"].widget.attrs["class"] = "form-select"

        clinic_ids = [self.instance.clinic_id] if self.instance.pk else list(clinics.values_list("pk", flat=True))
        self.fields["primary_nurse"].queryset = User.objects.filter(
            memberships__clinic_id__in=clinic_ids, memberships__role="nurse", is_active=True).distinct()
        if self.instance.pk:
            # Moving a patient to another clinic is not an edit a nurse makes.
            del self.fields["clinic"]
        elif clinics.count() == 1:
            self.fields["clinic"].initial = clinics.first()

    def clean(self):
        data = super().clean()
        clinic = data.get("clinic") or (self.instance.clinic if self.instance.clinic_id else None)
        # "Not in the future" on the patient's clinic's calendar (accounts.clinic_time).
        today = clinic_today(clinic) if clinic else timezone.localdate()
        dob = data.get("date_of_birth")
        if dob and (problem := dates.birth_date_problem(dob, today=today)):
            self.add_error("date_of_birth", problem)
        nurse = data.get("primary_nurse")
        if clinic and nurse and not nurse.has_role(clinic.pk, "nurse"):
            self.add_error("primary_nurse", "Choose a nurse of this patient's clinic.")
        mrn = data.get("mrn")
        if clinic and mrn:
            clash = Patient.objects.filter(clinic=clinic, mrn=mrn).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("mrn", "Another patient in this clinic has this MRN.")
        return data

    def dates_today(self) -> date:
        clinic = self.cleaned_data.get("clinic") or (self.instance.clinic if self.instance.clinic_id else None)
        return clinic_today(clinic) if clinic else timezone.localdate()

    def dates_born(self, data: dict) -> date | None:
        # The date of birth on this form; a refused one is no limit for the other dates.
        dob = data.get("date_of_birth")
        return dob if dob and dates.birth_date_problem(dob, today=self.dates_today()) is None else None


class CourseStartForm(SaneDatesMixin, CrispyMixin, forms.Form):
    submit_label = "Start course"
    past_dates = ("start_date",)
    drug = forms.ChoiceField(choices=TreatmentCourse.Drug.choices)
    regime = forms.ChoiceField(choices=TreatmentCourse.Regime.choices, label="Label regime")
    start_date = forms.DateField(widget=DATE, help_text="Date of the first dose.")
    dose_mg_bid = forms.TypedChoiceField(
        coerce=int,
        choices=[(600, "600 mg twice daily (standard)"), (450, "450 mg twice daily (Child-Pugh C, reference §2)")],
        label="Starting dose",
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["start_date"].initial = timezone.localdate()


class DoseChangeForm(SaneDatesMixin, CrispyMixin, forms.Form):
    """A prescriber's own dose change (prescriber's choice, toxicity, recovery)."""

    submit_label = "Record dose change"
    past_dates = ("effective_date",)  # not before the course start either: the service's rule
    ACTIONS = [
        ("dose", "Change the dose"),
        ("withhold", "Withhold"),
        ("discontinue", "Discontinue permanently"),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    dose_mg_bid = forms.TypedChoiceField(
        coerce=int, required=False, choices=[("", "—")] + [(d, f"{d} mg twice daily") for d in LADDER],
        label="New dose, or dose to resume at when withholding",
    )
    effective_date = forms.DateField(widget=DATE)
    reason = forms.ChoiceField(
        choices=[(r.value, r.value.replace("_", " ").capitalize()) for r in Reason if r not in (Reason.START, Reason.RECHALLENGE)]
    )
    toxicity = forms.CharField(required=False, max_length=80, help_text="For a toxicity: what, e.g. ALT increased.")
    toxicity_grade = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, choices=[("", "—")] + [(g, f"Grade {g}") for g in range(1, 6)]
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Required for a dose increase.")
    version = version_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["effective_date"].initial = timezone.localdate()

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action in ("dose", "withhold") and not data.get("dose_mg_bid"):
            self.add_error("dose_mg_bid", "Choose the dose.")
        if data.get("reason") == Reason.TOXICITY and not data.get("toxicity"):
            self.add_error("toxicity", "Name the toxicity.")
        return data

    def target(self) -> Dose:
        d = self.cleaned_data
        if d["action"] == "dose":
            return Dose(DoseState.ON_DRUG, d["dose_mg_bid"])
        if d["action"] == "withhold":
            return Dose(DoseState.WITHHELD, resume_dose_mg_bid=d["dose_mg_bid"])
        return Dose(DoseState.DISCONTINUED)


class MedicationForm(SaneDatesMixin, CrispyMixin, forms.ModelForm):
    # A heart-rate-lowering medicine often predates the course by years: no course warning.
    # Its end date may be planned ahead (a short course of a drug).
    past_dates = ("start_date",)
    planned_dates = ("end_date",)

    class Meta:
        model = ConcomitantMedication
        fields = ["name", "category", "start_date", "end_date"]
        widgets = {"start_date": DATE, "end_date": DATE}

    def clean(self):
        data = super().clean()
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            self.add_error("end_date", "The end date is before the start date.")
        return data


class ClinicalEventForm(SaneDatesMixin, CrispyMixin, forms.ModelForm):
    submit_label = "Record event"
    past_dates = ("onset_date", "resolved_date")
    course_dates = ("onset_date",)

    class Meta:
        model = ClinicalEvent
        fields = [
            "kind", "onset_date", "resolved_date", "grade", "bradycardia", "contributing_medication",
            "contributing_medication_adjusted", "rash_bsa_percent", "scar", "blistering_or_mucosal",
            "ild_causality", "hemolysis_status", "notes",
        ]
        widgets = {"onset_date": DATE, "resolved_date": DATE, "notes": forms.Textarea(attrs={"rows": 2})}


class LabPanelForm(SaneDatesMixin, forms.Form):
    """Several analytes collected together: one row per analyte, one submission.

    Field names are '<analyte>_value', '<analyte>_unit' and '<analyte>_limit' (the ULN,
    or the LLN for hemoglobin and heart rate). Validation is the service's
    (patients.services.lab_panel_record), so the form and an import share it.
    """

    collected_at = forms.DateTimeField(widget=DATETIME, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    is_baseline = forms.BooleanField(required=False, label="Baseline (before the first dose)")
    past_dates = course_dates = ("collected_at",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []
        for analyte in ANALYTES.values():
            value = forms.CharField(required=False, label=analyte.label, widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 8}))
            unit = forms.ChoiceField(choices=[(u, u) for u in analyte.units], required=False, label=f"{analyte.label} unit")
            self.fields[f"{analyte.code}_value"] = value
            self.fields[f"{analyte.code}_unit"] = unit
            limit_name = "ULN" if analyte.has_uln else "LLN" if analyte.has_lln else None
            if limit_name:
                self.fields[f"{analyte.code}_limit"] = forms.CharField(
                    required=False, label=f"{analyte.label} {limit_name}",
                    widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 6, "placeholder": "clinic default"}),
                )
            self.rows.append((analyte, limit_name))

    def bound_rows(self):
        for analyte, limit_name in self.rows:
            yield {
                "analyte": analyte,
                "value": self[f"{analyte.code}_value"],
                "unit": self[f"{analyte.code}_unit"],
                "limit": self[f"{analyte.code}_limit"] if limit_name else None,
                "limit_name": limit_name,
            }

    def entries(self) -> list[LabEntry]:
        entries = []
        for analyte, limit_name in self.rows:
            raw = self.cleaned_data.get(f"{analyte.code}_value", "").strip()
            if not raw:
                continue
            limit = self.cleaned_data.get(f"{analyte.code}_limit", "") if limit_name else None
            entries.append(
                LabEntry(
                    analyte=analyte.code,
                    value=raw,
                    unit=self.cleaned_data.get(f"{analyte.code}_unit") or analyte.unit,
                    uln=limit if limit_name == "ULN" else None,
                    lln=limit if limit_name == "LLN" else None,
                )
            )
        return entries

    def collected(self) -> datetime:
        return self.cleaned_data["collected_at"]


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=80, label="Search by MRN or name")
    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), required=False, empty_label="All my clinics")
    include_archived = forms.BooleanField(required=False, label="Include archived")

    def __init__(self, *args, clinics, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics
        self.fields["clinic"].widget.attrs["class"] = "form-select"


class AcceptForm(SaneDatesMixin, forms.Form):
    past_dates = ("effective_date",)
    version = version_field()
    option = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, choices=[])
    effective_date = forms.DateField(widget=DATE)
    recheck_every_days = forms.IntegerField(
        required=False, min_value=1, max_value=31, label="Recheck every (days)",
        help_text="While withheld, the analytes of the recovery condition are due this often "
                  "(reference §4.1: more frequent tests once elevations appear).")

    def __init__(self, *args, recommendation, **kwargs):
        super().__init__(*args, patient=recommendation.course.patient, **kwargs)
        self.fields["option"].choices = [(i, str(i)) for i in range(len(recommendation.options))]
        self.fields["effective_date"].initial = timezone.localdate()


class OverrideForm(forms.Form):
    version = version_field()
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                             error_messages={"required": "Give the reason for overriding the recommendation."})


class CommentForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label="Comment")


class LabAmendForm(CrispyMixin, forms.Form):
    """Correct a result (issue #12): the new value (and the lab's limits if they were
    wrong too), with the reason; the original stays on the record."""

    submit_label = "Save the correction"
    value = forms.CharField(label="Corrected value", max_length=30)
    uln = forms.CharField(label="ULN reported by the lab", max_length=30, required=False,
                          help_text="Leave empty to keep the limit the result was graded on.")
    lln = forms.CharField(label="LLN reported by the lab", max_length=30, required=False,
                          help_text="Leave empty to keep the limit the result was graded on.")
    reason = forms.CharField(label="Reason for the correction", max_length=500,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="For example: transcription error, the lab's corrected report.")

    def __init__(self, *args, lab=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper.form_id = "amend-form"
        self.helper.add_input(Hidden("action", "amend"))
        if lab is not None:
            self.fields["value"].help_text = f"In {lab.reported_unit}, as the laboratory reports it."
            spec = ANALYTES[lab.analyte]
            if not spec.has_uln:
                del self.fields["uln"]
            if not spec.has_lln:
                del self.fields["lln"]


class LabVoidForm(CrispyMixin, forms.Form):
    """Withdraw a result entered in error (wrong patient, wrong sample)."""

    submit_label = "Void this result"
    reason = forms.CharField(label="Reason for voiding", max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="For example: entered on the wrong patient, haemolysed sample.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper.form_id = "void-form"
        self.helper.add_input(Hidden("action", "void"))
