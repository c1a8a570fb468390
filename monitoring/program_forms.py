"""Forms of the oral therapy program (issue #16). The rules they check are the services'
(monitoring.program) and protocols.oral_program's; these forms only read what was typed."""

from __future__ import annotations

from django import forms

from monitoring.program import STRENGTHS
from patients.forms import DATE, CrispyMixin, SaneDatesMixin
from patients.models import CheckIn, ConcomitantMedication
from protocols import oral_program
from protocols.analytes import ANALYTES

STRENGTH_CHOICES = [(s, f"{s} mg") for s in sorted(STRENGTHS, reverse=True)]


def _bootstrap(form: forms.Form) -> None:
    """Bootstrap classes on the widgets of the forms laid out by hand (not crispy)."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            widget.attrs.setdefault("class", "form-check-input")
        elif isinstance(widget, forms.Select) and not isinstance(widget, forms.RadioSelect):
            widget.attrs.setdefault("class", "form-select")
        elif not isinstance(widget, forms.RadioSelect | forms.CheckboxSelectMultiple):
            widget.attrs.setdefault("class", "form-control")


class EducationForm(SaneDatesMixin, forms.Form):
    past_dates = ("given_on",)
    given_on = forms.DateField(widget=DATE, label="Date")
    topics = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, label="Covered with the patient",
                                       error_messages={"required": "Tick each topic as you cover it."})
    with_whom = forms.CharField(max_length=120, required=False, label="With whom",
                                help_text="The patient, a carer, an interpreter…")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)

    def __init__(self, *args, topics: list[oral_program.Topic], **kwargs):
        super().__init__(*args, **kwargs)
        self.topic_list = topics
        self.fields["topics"].choices = [(t.code, t.title) for t in topics]
        _bootstrap(self)


class _SupplyForm(SaneDatesMixin, CrispyMixin, forms.Form):
    capsules = forms.IntegerField(min_value=1, max_value=2000)
    strength_mg = forms.TypedChoiceField(choices=STRENGTH_CHOICES, coerce=int, initial=150, label="Capsule strength",
                                         help_text="150 mg in the US and EU; 20 and 40 mg exist in Japan (reference §2).")
    note = forms.CharField(max_length=300, required=False)


class PrescriptionForm(_SupplyForm):
    submit_label = "Record prescription"
    past_dates = ("written_on",)
    written_on = forms.DateField(widget=DATE, label="Written on")
    field_order = ["written_on", "capsules", "strength_mg", "note"]


class DispensingForm(_SupplyForm):
    submit_label = "Record dispensing"
    past_dates = ("dispensed_on",)
    dispensed_on = forms.DateField(widget=DATE, label="Dispensed on", help_text="The day the patient got the capsules.")
    field_order = ["dispensed_on", "capsules", "strength_mg", "note"]


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Why is this record withdrawn?")


def _grade_choices(symptom: oral_program.Symptom) -> list[tuple[int, str]]:
    return [(0, "None"), *((g, f"Grade {g}: {text}") for g, text in sorted(symptom.grades.items()))]


class CheckInForm(SaneDatesMixin, forms.Form):
    """One structured contact. Each symptom is a CTCAE v5.0 term with its own grades
    (reference §8.3, §8.6, §8.7); 'None' is grade 0."""

    past_dates = ("done_on",)
    done_on = forms.DateField(widget=DATE, label="Date")
    mode = forms.ChoiceField(choices=CheckIn.Mode.choices, widget=forms.RadioSelect, label="Contact")
    missed_doses = forms.IntegerField(min_value=0, max_value=500, initial=0, label="Doses missed since the last contact")
    missed_reason = forms.CharField(max_length=300, required=False, label="Why they were missed")
    vomited_doses = forms.IntegerField(min_value=0, max_value=500, initial=0, label="Doses vomited",
                                       help_text="Not repeated; the next dose at the usual time (reference §2).")
    respiratory_new_or_worse = forms.BooleanField(
        required=False, label="Breathlessness or cough is new or worse (with or without a fever)",
        help_text="Grade the dyspnea or the cough below; a prescriber is asked to investigate for ILD (reference §4.2).")
    heart_rate = forms.IntegerField(min_value=int(ANALYTES["heart_rate"].minimum), max_value=int(ANALYTES["heart_rate"].maximum),
                                    required=False, label="Heart rate (bpm)",
                                    help_text="Needed when dizziness or fainting is reported (reference §4.4).")
    new_medicine = forms.CharField(max_length=120, required=False, label="New medicine that can slow the heart")
    new_medicine_category = forms.ChoiceField(choices=[("", "—"), *ConcomitantMedication.Category.choices],
                                              required=False, label="Its kind")
    stop_medicines = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Heart-rate-lowering medicines stopped",
        help_text="Stopped on the check-in's date (reference §4.4: a contributing medicine stopped or adjusted).")
    stopped_medicines = forms.CharField(max_length=300, required=False, label="Other medicines stopped")
    capsules_on_hand = forms.IntegerField(min_value=0, max_value=2000, required=False,
                                          label="Capsules on hand (as counted by the patient)")
    plan = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000,
                           label="Plan")

    def __init__(self, *args, medicines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stop_medicines"].choices = [(str(m.pk), f"{m.name} ({m.get_category_display()})") for m in medicines]
        if not medicines:
            del self.fields["stop_medicines"]
        for s in oral_program.SYMPTOMS:
            self.fields[f"symptom_{s.code}"] = forms.TypedChoiceField(
                choices=_grade_choices(s), coerce=int, initial=0, required=False, empty_value=0, label=s.term,
                help_text=s.source,
                widget=forms.Select(attrs={"class": "form-select form-select-sm"}))
        _bootstrap(self)
        self.fields["mode"].widget.attrs["class"] = "form-check-input"

    def symptom_fields(self):
        return [self[f"symptom_{s.code}"] for s in oral_program.SYMPTOMS]

    def other_fields(self):
        return [self[name] for name in self.fields if not name.startswith("symptom_") and name != "confirm_dates"]

    def symptoms(self) -> dict[str, int]:
        return {s.code: self.cleaned_data[f"symptom_{s.code}"] for s in oral_program.SYMPTOMS
                if self.cleaned_data.get(f"symptom_{s.code}")}
