"""Thin Celery tasks: ids in, one service call, retries only (style.md 3.3)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def heartbeat() -> str:
    from monitoring.services import heartbeat_record

    beat = heartbeat_record(name="heartbeat", now=timezone.now())
    return beat.last_run_at.isoformat()
