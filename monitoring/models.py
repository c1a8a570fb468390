from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last time a periodic job completed. /health/ reports how old it is, so a
    stopped beat or worker is noticed (reliability.md F11: monitor the monitor)."""

    name = models.CharField(max_length=80, unique=True)
    last_run_at = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_run_at:%Y-%m-%d %H:%M:%S}"
