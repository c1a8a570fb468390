from django import forms
from django.contrib.auth.forms import AuthenticationForm


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
