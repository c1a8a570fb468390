from __future__ import annotations

from django import forms

from monitoring.models import ClinicSettings, FollowUp, MonitoringRecord, Requirement
from monitoring.selectors import Filters
from patients.forms import DATE, SaneDatesMixin
from protocols.analytes import ANALYTES


class FollowUpForm(SaneDatesMixin, forms.Form):
    planned_dates = ("until",)  # the service narrows it to FollowUp.MAX_SNOOZE_DAYS
    kind = forms.ChoiceField(choices=FollowUp.Kind.choices)
    note = forms.CharField(max_length=300, label="Why")
    until = forms.DateField(widget=DATE, label="Snooze until")  # offered on the clinic's dates: views._snooze_dates


UNIT_CHOICES = [("days", "days"), ("months", "months")]


class ScheduleForm(forms.Form):
    """A schedule in plain words: every N days/months for the first M months, then every
    N days/months (or nothing more). Empty 'every' fields: not scheduled."""

    label = forms.CharField(max_length=120)
    analytes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                         help_text="Results that satisfy it when all are collected the same day.")
    first_every = forms.IntegerField(min_value=1, max_value=365, required=False, label="Every")
    first_unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="days", label="Unit")
    first_months = forms.IntegerField(min_value=1, max_value=3660, required=False,
                                      label="For the first … (empty: throughout)")
    first_length_unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="months", required=False, label="Unit of that length",
                                          help_text="Days count from day 0, the first dose: 'every 7 days for the first "
                                                    "15 days' is day 7 and day 14.")
    then_every = forms.IntegerField(min_value=1, max_value=365, required=False, label="Then every")
    then_unit = forms.ChoiceField(choices=UNIT_CHOICES, initial="months", label="Unit")
    note = forms.CharField(max_length=200, required=False, label="Reason for the change")
    # The newest schedule version the page was read at (issue #12 item 4): 0 for none.
    based_on = forms.IntegerField(widget=forms.HiddenInput, min_value=0, error_messages={
        "required": "This page is out of date (it carries no version of the schedule): reload it and try again."})

    def _post_clean(self):
        super()._post_clean()
        if "based_on" in self._errors:  # hidden: shown above the form
            for message in self._errors.pop("based_on"):
                self.add_error(None, message)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["analytes"].choices = [(a.code, a.label) for a in ANALYTES.values()]

    def clean(self):
        data = super().clean()
        if data.get("first_months") and data.get("first_length_unit") == "months" and data["first_months"] > 120:
            self.add_error("first_months", "At most 120 months.")
        if data.get("then_every") and not data.get("first_months"):
            self.add_error("first_months", "Say how long the first phase lasts before the 'then' phase starts.")
        if data.get("first_months") and not data.get("first_every"):
            self.add_error("first_every", "Say how often in the first phase.")
        return data

    def schedule(self) -> dict:
        d = self.cleaned_data
        phases = []
        if d.get("first_every"):
            key = "every_days" if d["first_unit"] == "days" else "every_months"
            length = d.get("first_months")
            if length and d.get("first_length_unit") == "days":
                phases.append({"months": None, "days": length, key: d["first_every"]})
            else:
                phases.append({"months": length, key: d["first_every"]})
            if d.get("first_months") and d.get("then_every"):
                key = "every_days" if d["then_unit"] == "days" else "every_months"
                phases.append({"months": None, key: d["then_every"]})
        return {"phases": phases}

    @staticmethod
    def initial_for(requirement: Requirement) -> dict:
        version = requirement.versions.order_by("-effective_from", "-pk").first()
        phases = (version.schedule if version else {}).get("phases", [])
        initial = {"label": requirement.label, "analytes": requirement.analytes}
        if phases:
            p = phases[0]
            initial.update(first_every=p.get("every_days") or p.get("every_months"),
                           first_unit="days" if p.get("every_days") else "months",
                           first_months=p.get("days") or p.get("months"),
                           first_length_unit="days" if p.get("days") else "months")
        if len(phases) > 1:
            p = phases[1]
            initial.update(then_every=p.get("every_days") or p.get("every_months"),
                           then_unit="days" if p.get("every_days") else "months")
        return initial


class NewRequirementForm(ScheduleForm):
    code = forms.SlugField(max_length=40, help_text="Short code, e.g. ecg")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["based_on"]  # a new requirement has no version to be stale against


class ClinicSettingsForm(forms.ModelForm):
    class Meta:
        model = ClinicSettings
        fields = ["due_soon_days", "grace_days", "escalation_days", "fill_check_days", "patient_phone", "digest_time", "digest_counts_only"]
        widgets = {"digest_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}


class MonitoringRecordForm(SaneDatesMixin, forms.ModelForm):
    past_dates = course_dates = ("performed_on",)

    class Meta:
        model = MonitoringRecord
        fields = ["requirement_code", "performed_on", "note"]
        widgets = {"performed_on": DATE}

    def __init__(self, *args, requirements, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["requirement_code"] = forms.ChoiceField(choices=[(r.code, r.label) for r in requirements], label="Test")


class PreferencesForm(forms.Form):
    """A user's email preferences (the preferences page and the digest's unsubscribe link)."""

    digests_enabled = forms.BooleanField(
        required=False, widget=forms.CheckboxInput(attrs={"id": "digests_enabled"}),
        label="Send me the daily digest of overdue and due-today monitoring, and escalations")


class WorklistFilterForm(forms.Form):
    """The worklist's filters: clinic, test, nurse and order from the query string (ids and
    codes, never patient data); the MRN is posted so it stays out of URLs and logs (ASVS
    14.2.1). A value that does not parse is ignored (the filter is off), never an error page."""

    clinic = forms.IntegerField(required=False, min_value=1)
    requirement = forms.SlugField(required=False, max_length=40)
    nurse = forms.IntegerField(required=False, min_value=1)
    order = forms.ChoiceField(required=False, choices=[("most", "Most overdue first"), ("least", "Least overdue first")])

    def filters(self, *, user, mrn: str = "") -> Filters:
        data = self.cleaned_data if self.is_valid() else {
            name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        clinic_id = data.get("clinic")
        if clinic_id and clinic_id not in user.clinic_ids():
            clinic_id = -1  # another clinic: shows nothing, reveals nothing
        return Filters(clinic_id=clinic_id, requirement=data.get("requirement") or None, nurse_id=data.get("nurse"),
                       mrn=mrn.strip()[:32], overdue_order=data.get("order") or "most")
