from __future__ import annotations

from django import forms

from protocols.models import DesensitizationProtocol


class ProtocolForm(forms.ModelForm):
    class Meta:
        model = DesensitizationProtocol
        fields = ["name", "source", "start_dose", "final_dose", "duration_days", "adjunct", "setting", "outcome"]


class StepForm(forms.Form):
    morning_mg = forms.IntegerField(min_value=0, max_value=600, label="Morning mg")
    evening_mg = forms.IntegerField(min_value=0, max_value=600, label="Evening mg")
    days = forms.IntegerField(min_value=1, max_value=60, label="Days")


StepFormSet = forms.formset_factory(StepForm, extra=2, can_delete=True, max_num=30)
