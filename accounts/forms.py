from django.contrib.auth.forms import AuthenticationForm


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        # Same message whether or not the account exists (ASVS 6.3.8).
        "invalid_login": "The username or password is not right. Both are case-sensitive.",
    }
