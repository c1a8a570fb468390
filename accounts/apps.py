from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Clinics and people"

    def ready(self) -> None:
        from accounts import audit, checks  # noqa: F401 - registers the deployment checks and the history IP receiver
