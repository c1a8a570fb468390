from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring and reminders"

    def ready(self) -> None:
        from monitoring import (
            signals,  # noqa: F401 - connects the receivers
            tasks,  # noqa: F401 - registers the tasks in every process (the web enqueues by name)
        )
