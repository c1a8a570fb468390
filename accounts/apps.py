from django.apps import AppConfig
from django.urls import register_converter

from accounts.converters import IdConverter


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Clinics and people"

    def ready(self) -> None:
        register_converter(IdConverter, "id")  # before any URL module is loaded
        from accounts import audit, checks  # noqa: F401 - registers the deployment checks and the history IP receiver
