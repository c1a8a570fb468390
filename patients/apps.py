from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patient records"

    def ready(self) -> None:
        from patients import (
            recommendations,  # noqa: F401 - listens to services.recommendation_due
            tasks,  # noqa: F401 - registers the import task in every process (the web enqueues by name)
        )
