from __future__ import annotations

from datetime import datetime

from django.db.models import F

from monitoring.models import Heartbeat


def heartbeat_record(*, name: str, now: datetime) -> Heartbeat:
    """Idempotent: running it twice just moves the timestamp."""
    updated = Heartbeat.objects.filter(name=name).update(last_run_at=now, runs=F("runs") + 1)
    if not updated:
        Heartbeat.objects.get_or_create(name=name, defaults={"last_run_at": now, "runs": 1})
    return Heartbeat.objects.get(name=name)
