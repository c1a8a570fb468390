"""Thin Celery tasks: ids in, one service call, retries only (style.md 3.3).
The schedule is CELERY_BEAT_SCHEDULE in config/settings/base.py."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from monitoring import services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def heartbeat() -> str:
    return services.heartbeat_record(name="heartbeat", now=timezone.now()).last_run_at.isoformat()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, max_retries=5)
def monitoring_tick() -> dict:
    """monitoring.services.tick: flag, plan and requeue; make up a lost daily sweep."""
    return services.tick(now=timezone.now())


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, max_retries=5)
def monitoring_full_sweep() -> int:
    """monitoring.services.full_sweep: recompute every patient, then flag."""
    return services.full_sweep(now=timezone.now())


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, retry_jitter=True,
             max_retries=4)
def send_digest(digest_id: int) -> str:
    """One digest. Nothing enqueues it any more (send_digests sends batches); it stays
    registered for messages a previous release left on the broker during an upgrade.
    Transient mail failures are not retried here: the row keeps its next attempt time
    and monitoring_tick requeues it, so retries span hours and survive worker restarts."""
    try:
        return services.digest_send(digest_id=digest_id)
    except services.DigestDeferred:
        return "deferred"


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, retry_jitter=True,
             max_retries=4)
def send_digests(digest_ids: list[int]) -> dict[str, int]:
    """A batch over one SMTP connection (monitoring.services.digests_send); deferred ones
    keep their next attempt time and monitoring_tick requeues them."""
    outcomes = services.digests_send(digest_ids=digest_ids)
    return {kind: sum(1 for o in outcomes.values() if (o if isinstance(o, str) else "deferred") == kind)
            for kind in ("sent", "failed", "deferred", "not claimed")}
