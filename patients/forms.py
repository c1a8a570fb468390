from __future__ import annotations

from datetime import datetime

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils import timezone

from accounts.models import Clinic
from patients.models import ClinicalEvent, ConcomitantMedication, Patient, TreatmentCourse
from patients.services import LabEntry
from protocols.analytes import ANALYTES
from protocols.dosing import LADDER, Dose, DoseState, Reason

# A browser's date control accepts only ISO values: "22/11/2026" (the en-gb format) would
# show as empty and an untouched save would erase the date.
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CrispyMixin:
    submit_label = "Save"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", self.submit_label))


class PatientForm(CrispyMixin, forms.ModelForm):
    """Explicit fields only: clinic, archive state and audit columns cannot be posted (I9)."""

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
        from accounts.models import User

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
        today = timezone.localdate()
        for name in ("date_of_birth", "alk_test_date", "diagnosis_date"):
            value = data.get(name)
            if value and value > today:
                self.add_error(name, "This date is in the future.")
        dob = data.get("date_of_birth")
        if dob and dob.year < 1900:
            self.add_error("date_of_birth", "Enter a date of birth after 1900.")
        clinic = data.get("clinic") or (self.instance.clinic if self.instance.clinic_id else None)
        nurse = data.get("primary_nurse")
        if clinic and nurse and not nurse.has_role(clinic.pk, "nurse"):
            self.add_error("primary_nurse", "Choose a nurse of this patient's clinic.")
        mrn = data.get("mrn")
        if clinic and mrn:
            clash = Patient.objects.filter(clinic=clinic, mrn=mrn).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("mrn", "Another patient in this clinic has this MRN.")
        return data


class CourseStartForm(CrispyMixin, forms.Form):
    submit_label = "Start course"
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

    def clean_start_date(self):
        value = self.cleaned_data["start_date"]
        if value > timezone.localdate():
            raise forms.ValidationError("A course cannot start in the future; record it on the day of the first dose.")
        return value


class DoseChangeForm(CrispyMixin, forms.Form):
    """A prescriber's own dose change (prescriber's choice, toxicity, recovery)."""

    submit_label = "Record dose change"
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["effective_date"].initial = timezone.localdate()

    def clean_effective_date(self):
        value = self.cleaned_data["effective_date"]
        if value > timezone.localdate():
            raise forms.ValidationError("Record a dose change on or after the day it takes effect.")
        return value

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


class MedicationForm(CrispyMixin, forms.ModelForm):
    class Meta:
        model = ConcomitantMedication
        fields = ["name", "category", "start_date", "end_date"]
        widgets = {"start_date": DATE, "end_date": DATE}

    def clean(self):
        data = super().clean()
        if data.get("start_date") and data.get("end_date") and data["end_date"] < data["start_date"]:
            self.add_error("end_date", "The end date is before the start date.")
        return data


class ClinicalEventForm(CrispyMixin, forms.ModelForm):
    submit_label = "Record event"

    class Meta:
        model = ClinicalEvent
        fields = [
            "kind", "onset_date", "resolved_date", "grade", "bradycardia", "contributing_medication",
            "contributing_medication_adjusted", "rash_bsa_percent", "scar", "blistering_or_mucosal",
            "ild_causality", "hemolysis_status", "notes",
        ]
        widgets = {"onset_date": DATE, "resolved_date": DATE, "notes": forms.Textarea(attrs={"rows": 2})}


class LabPanelForm(forms.Form):
    """Several analytes collected together: one row per analyte, one submission.

    Field names are '<analyte>_value', '<analyte>_unit' and '<analyte>_limit' (the ULN,
    or the LLN for hemoglobin and heart rate). Validation is the service's
    (patients.services.lab_panel_record), so the form and an import share it.
    """

    collected_at = forms.DateTimeField(widget=DATETIME, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    is_baseline = forms.BooleanField(required=False, label="Baseline (before the first dose)")

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


class AcceptForm(forms.Form):
    option = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, choices=[])
    effective_date = forms.DateField(widget=DATE)
    recheck_every_days = forms.IntegerField(
        required=False, min_value=1, max_value=31, label="Recheck every (days)",
        help_text="While withheld, the analytes of the recovery condition are due this often "
                  "(reference §4.1: more frequent tests once elevations appear).")

    def __init__(self, *args, recommendation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["option"].choices = [(i, str(i)) for i in range(len(recommendation.options))]
        self.fields["effective_date"].initial = timezone.localdate()

    def clean_effective_date(self):
        value = self.cleaned_data["effective_date"]
        if value > timezone.localdate():
            raise forms.ValidationError("The effective date cannot be in the future.")
        return value


class OverrideForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                             error_messages={"required": "Give the reason for overriding the recommendation."})


class CommentForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label="Comment")
