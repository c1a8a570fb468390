from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Q

from accounts.models import Clinic, User


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        # Same message whether or not the account exists (ASVS 6.3.8).
        "invalid_login": "The username or password is not right. Both are case-sensitive.",
    }


class TokenForm(forms.Form):
    """A six-digit code from the user's authenticator app (TOTP, RFC 6238)."""

    token = forms.RegexField(regex=r"^\s*[0-9]{6}\s*$", label="Six-digit code", max_length=12,
                             error_messages={"invalid": "Enter the six digits your authenticator app shows."},
                             widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code",
                                                           "autofocus": True}))

    def clean_token(self) -> str:
        return self.cleaned_data["token"].strip()


class EmergencyAccessForm(forms.Form):
    """Break-glass (accounts.emergency): the patient by MRN and clinic, posted so neither
    travels in a URL (ASVS 14.2.1), and why, in words."""

    REASON_MIN_CHARS = 20
    REASON_MIN_WORDS = 4

    mrn = forms.CharField(label="MRN", max_length=32)
    clinic = forms.CharField(label="Clinic", max_length=120, help_text="The patient's clinic: its name or short code.")
    reason = forms.CharField(
        label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="At least a sentence: the emergency, and why you need this record now. The clinic's admins read it.")

    def clean_clinic(self):

        raw = self.cleaned_data["clinic"].strip()
        clinic = Clinic.objects.filter(Q(code__iexact=raw) | Q(name__iexact=raw)).first()
        if clinic is None:
            raise forms.ValidationError("No clinic has this name or code.")
        return clinic

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if len(reason) < self.REASON_MIN_CHARS or len(reason.split()) < self.REASON_MIN_WORDS:
            raise forms.ValidationError(
                "Give the reason in at least a sentence: the emergency, and why you need this record now.")
        return reason


class ApiKeyForm(forms.Form):
    """A clinic admin issues a REST API key for one member of their clinic."""

    clinic = forms.ModelChoiceField(queryset=Clinic.objects.none(), empty_label=None)
    user = forms.ModelChoiceField(queryset=None, label="Acts as", help_text="The key's requests see and do what "
                                  "this member may, in this clinic only.")
    name = forms.CharField(max_length=80, help_text="What it is for, e.g. 'LIS interface'.")
    days = forms.IntegerField(min_value=1, max_value=365, initial=90, label="Valid for (days)")

    def __init__(self, *args, clinics, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics
        self.fields["user"].queryset = User.objects.filter(memberships__clinic__in=clinics).distinct() \
            .order_by("username")

    def clean(self):
        data = super().clean()
        clinic, user = data.get("clinic"), data.get("user")
        if clinic and user and clinic.pk not in user.clinic_ids():
            self.add_error("user", f"{user} is not a member of {clinic.name}.")
        return data
