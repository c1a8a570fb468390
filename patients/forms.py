from __future__ import annotations

from datetime import date, datetime

from crispy_forms.bootstrap import InlineRadios, StrictButton
from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Div, Field, Fieldset, Hidden, Layout, Submit
from django import forms
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import escape

from accounts.clinic_time import clinic_today
from accounts.models import Clinic, User
from patients.models import ClinicalEvent, ConcomitantMedication, Patient, PlanDecision, TreatmentCourse
from patients.services import LabEntry
from protocols import dates
from protocols.analytes import ANALYTES
from protocols.desensitization import EVENING_DOSE_FROM, describe_capsules
from protocols.dosing import LADDER, Dose, DoseState, Reason
from protocols.models import DesensitizationProtocol

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


class EventResolveForm(SaneDatesMixin, forms.Form):
    past_dates = ("resolved_date",)
    resolved_date = forms.DateField(widget=DATE, label="Resolved on")


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


# --- Desensitization plans ------------------------------------------------------------------


def _date_input(id_: str) -> forms.DateInput:
    """DATE with the page's own element id."""
    return forms.DateInput(attrs={"type": "date", "id": id_}, format="%Y-%m-%d")


NOT_A_DATE = "Not a date: use the date picker (YYYY-MM-DD)."
FIELDSET = "patients/_fieldset.html"  # crispy's Fieldset with a legend of body size


class _IdRadioSelect(forms.RadioSelect):
    """Radios whose element ids are '<id>-<value>' (m-taken, d-repeat), not '<id>_<index>'."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex=subindex, attrs=attrs)
        base = (attrs or {}).get("id") or self.attrs.get("id")
        if base:
            option["attrs"]["id"] = f"{base}-{value}"
        return option


class PlanChoiceForm(SaneDatesMixin, forms.Form):
    """plan_create, the preview (GET): a protocol the user may see, one of this patient's
    rashes and a planned start date (empty: today on the clinic's calendar). An id from
    another clinic or patient is not a choice: it is refused, never looked up globally."""

    planned_dates = ("start_date",)
    protocol = forms.ModelChoiceField(
        queryset=DesensitizationProtocol.objects.none(), empty_label="Choose…",
        widget=forms.Select(attrs={"id": "p-protocol"}),
        error_messages={"required": "Choose a protocol.",
                        "invalid_choice": "Choose a protocol from the list: this one is not available to you."})
    rash_event = forms.ModelChoiceField(
        queryset=ClinicalEvent.objects.none(), required=False, empty_label="Choose…", label="The rash it follows",
        widget=forms.Select(attrs={"id": "p-rash"}),
        error_messages={"invalid_choice": "Choose one of this patient's recorded rashes."})
    start_date = forms.DateField(required=False, widget=_date_input("p-start"), error_messages={"invalid": NOT_A_DATE})

    def __init__(self, *args, user: User, patient: Patient, **kwargs):
        super().__init__(*args, patient=patient, **kwargs)
        protocol = self.fields["protocol"]
        protocol.queryset = DesensitizationProtocol.objects.visible_to(user).prefetch_related("steps")
        protocol.label_from_instance = lambda p: f"{p} (not startable)" if p.why_not_startable() else str(p)
        rash = self.fields["rash_event"]
        rash.queryset = patient.events.filter(kind=ClinicalEvent.Kind.RASH).order_by("-onset_date")
        rash.label_from_instance = self._rash_label
        self.helper = FormHelper()
        self.helper.form_method = "get"
        # Top-aligned, the button under a blank label: a message under one field moves nothing else.
        self.helper.form_class = "row g-2 align-items-start mb-3"
        self.helper.layout = Layout(
            Div("protocol", css_class="col-md-4"),
            Div("rash_event", css_class="col-md-4"),
            Div("start_date", css_class="col-md-2"),
            Div(HTML('<div class="form-label d-none d-md-block" aria-hidden="true">&nbsp;</div>'),
                StrictButton("Preview", type="submit", css_class="btn-outline-primary w-100"), css_class="col-md-2 mb-3"),
        )

    @staticmethod
    def _rash_label(rash: ClinicalEvent) -> str:
        grade = f", grade {rash.grade}" if rash.grade else ""
        resolved = (f", resolved {format_date(rash.resolved_date, 'j M Y')}" if rash.resolved_date
                    else ", not resolved")
        return f"{rash}{grade}{resolved}"

    def clean_start_date(self) -> date:
        return self.cleaned_data.get("start_date") or self.dates_today()


class PlanStartForm(SaneDatesMixin, CrispyMixin, forms.Form):
    """plan_create, the approval (POST): the context of reference §9.3 requirement 4, and
    the prescriber's written reason when the rash needs one. The protocol, rash and start
    date travel as hidden inputs (`carry`) and are checked again by PlanChoiceForm."""

    submit_label = "Approve and start the plan"
    past_dates = ("checkpoint_inhibitor_last_dose",)
    override_reason = forms.CharField(
        label="Prescriber's reason to go ahead", max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "id": "p-override"}),
        error_messages={"required": "Give the reason to go ahead despite AGEP, blistering or mucosal involvement."})
    corticosteroid = forms.CharField(
        required=False, max_length=120, label="Concurrent corticosteroid",
        widget=forms.TextInput(attrs={"id": "p-steroid", "placeholder": "e.g. prednisolone 20 mg daily, or none"}))
    prior_checkpoint_inhibitor = forms.BooleanField(
        required=False, label="Previously treated with a PD-1/PD-L1 inhibitor",
        widget=forms.CheckboxInput(attrs={"id": "p-ici"}))
    checkpoint_inhibitor_last_dose = forms.DateField(
        required=False, label="Its last dose", widget=_date_input("p-ici-date"), error_messages={"invalid": NOT_A_DATE})

    def __init__(self, *args, carry: dict[str, str], needs_override: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not needs_override:
            del self.fields["override_reason"]
        self.helper.form_class = "col-lg-6"
        self.helper.layout = Layout(
            *(Hidden(name, value) for name, value in carry.items()),
            *(["override_reason"] if needs_override else []),
            Fieldset('<span class="fw-semibold">Context (reference §9.3 requirement 4)</span>', "corticosteroid",
                     "prior_checkpoint_inhibitor", Field("checkpoint_inhibitor_last_dose", css_class="w-auto"),
                     template=FIELDSET),
        )

    def clean(self):
        data = super().clean()
        if data.get("checkpoint_inhibitor_last_dose") and not data.get("prior_checkpoint_inhibitor"):
            self.add_error("checkpoint_inhibitor_last_dose", "Tick “Previously treated with a PD-1/PD-L1 inhibitor”, "
                                                             "or clear this date.")
        return data


class DayRecordForm(forms.Form):
    """plan_detail, one day of a plan: each dose taken, missed or not answered (None;
    nothing is pre-chosen, issue 8), a reaction with its CTCAE grade, a note. `day`,
    `evening_open` and `action` only lay the page out; the service decides the rest."""

    morning_taken = forms.TypedChoiceField(
        choices=[("taken", "Morning dose taken"), ("missed", "Morning dose missed")], label="",
        coerce=lambda v: v == "taken", required=False, empty_value=None, widget=_IdRadioSelect(attrs={"id": "m"}),
        error_messages={"invalid_choice": "Morning dose: choose taken or missed."})
    evening_taken = forms.TypedChoiceField(
        choices=[("taken", "Evening dose taken"), ("missed", "Evening dose missed")], label="",
        coerce=lambda v: v == "taken", required=False, empty_value=None, widget=_IdRadioSelect(attrs={"id": "e"}),
        error_messages={"invalid_choice": "Evening dose: choose taken or missed."})
    reaction = forms.BooleanField(required=False, label="Reaction (rash, fever, mucosal symptoms)",
                                  widget=forms.CheckboxInput(attrs={"id": "reaction"}))
    reaction_grade = forms.TypedChoiceField(
        choices=[("", "—")] + [(str(g), f"Grade {g}") for g in range(1, 5)], coerce=int, required=False,
        empty_value=None, label="Reaction grade (CTCAE)", widget=forms.Select(attrs={"id": "grade"}),
        error_messages={"invalid_choice": "“%(value)s” is not a grade: choose grade 1, 2, 3 or 4."})
    note = forms.CharField(required=False, max_length=300, widget=forms.TextInput(attrs={"id": "note"}))

    def __init__(self, *args, day=None, evening_open: bool = True, action: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_action = action
        if day is None:
            return
        strengths = day.plan.strengths
        later = HTML(f'<p class="form-text mb-0" id="e-later">The evening dose is recorded from '
                     f'{EVENING_DOSE_FROM:%H:%M} (clinic time). A reaction or a missed morning dose can be '
                     'recorded now.</p>')
        self.helper.layout = Layout(
            # The legends give the dose; the radios need no label of their own.
            Fieldset(escape(f"Morning dose: {day.morning_mg} mg ({describe_capsules(day.morning_mg, strengths)})"),
                     InlineRadios("morning_taken", wrapper_class="mb-1"), css_class="mb-1",
                     data_testid="morning-dose", template=FIELDSET),
            Fieldset(escape(f"Evening dose: {day.evening_mg} mg ({describe_capsules(day.evening_mg, strengths)})"),
                     InlineRadios("evening_taken", wrapper_class="mb-1"), *([] if evening_open else [later]),
                     css_class="mb-2", data_testid="evening-dose", disabled=not evening_open,
                     aria_describedby=None if evening_open else "e-later", template=FIELDSET),
            "reaction",
            Field("reaction_grade", css_class="form-select-sm w-auto", wrapper_class="mt-2"),
            Field("note", css_class="form-control-sm"),
        )
        self.helper.add_input(Submit("submit", f"Record day {day.number}", css_class="btn-sm", css_id="record-day"))

    def clean(self):
        data = super().clean()
        if "reaction_grade" in self.errors:
            return data
        if data.get("reaction") and data.get("reaction_grade") is None:
            self.add_error("reaction_grade", "Give the CTCAE grade of the reaction.")
        elif not data.get("reaction") and data.get("reaction_grade") is not None:
            self.add_error("reaction_grade", "Tick “Reaction” to record a reaction of this grade, or clear the grade.")
        return data


PLAN_OUT_OF_DATE = "This page is out of date (it carries no version of the plan): reload it and try again."


class PlanDecisionForm(SaneDatesMixin, CrispyMixin, forms.Form):
    """plan_detail, a paused plan: the prescriber's decision, the reason, when to resume
    (empty: tomorrow), and the version of the plan the page was read at."""

    submit_label = "Record decision"
    planned_dates = ("resume_on",)
    decision = forms.ChoiceField(
        choices=PlanDecision.Decision.choices, widget=_IdRadioSelect(attrs={"id": "d"}),
        error_messages={"required": "Choose a decision.", "invalid_choice": "Choose one of the decisions listed."})
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "id": "d-reason"}),
                             error_messages={"required": "Give the reason for the decision."})
    resume_on = forms.DateField(required=False, widget=_date_input("d-resume"), error_messages={"invalid": NOT_A_DATE},
                                help_text="Empty: tomorrow. Not used when the plan stops.")
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1, error_messages={
        "required": PLAN_OUT_OF_DATE, "invalid": PLAN_OUT_OF_DATE, "min_value": PLAN_OUT_OF_DATE})

    def __init__(self, *args, action: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper.form_action = action
        self.helper.layout = Layout(
            "decision", Field("reason", css_class="form-control-sm"),
            Field("resume_on", css_class="form-control-sm w-auto"), "version")
        submit = Submit("submit", self.submit_label, css_id="record-decision")
        submit.field_classes = "btn btn-warning btn-sm"
        self.helper.inputs = [submit]
