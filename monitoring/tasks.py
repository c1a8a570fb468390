"""Thin Celery tasks: ids in, one service call, retries only (style.md 3.3).
The schedule is CELERY_BEAT_SCHEDULE in config/settings/base.py."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from monitoring import services
from monitoring.services import DigestDeferred, digest_send, heartbeat_record


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def heartbeat() -> str:
    beat = heartbeat_record(name="heartbeat", now=timezone.now())
    return beat.last_run_at.isoformat()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, max_retries=5)
def monitoring_tick() -> dict:
    """Every few minutes: recompute patients marked dirty, flag what became overdue,
    plan the digests of clinics whose digest time has come, requeue lost sends."""
    now = timezone.now()
    result = {
        "recomputed": services.schedule_sweep(full=False),
        "plans_paused": services.plans_flag_missed(now=now),
        "flagged": services.overdue_flag(now=now),
        **services.digests_plan(now=now),
        "requeued": services.digests_requeue(now=now),
        "full_sweep_made_up": False,
    }
    if services.full_sweep_due(now=now) and services.full_sweep_claim(now=now):
        monitoring_full_sweep.delay()
        result["full_sweep_made_up"] = True
    services.heartbeat_record(name="monitoring_tick", now=now)
    return result


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, max_retries=5)
def monitoring_full_sweep() -> int:
    """Once a day: recompute every patient (dates move with time: phase changes, the end
    of the first month for CPK), then flag."""
    n = services.schedule_sweep(full=True)
    services.overdue_flag(now=timezone.now())
    services.heartbeat_record(name="monitoring_full_sweep", now=timezone.now())
    return n


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=300, retry_jitter=True,
             max_retries=4)
def send_digest(digest_id: int) -> str:
    """Transient mail failures are not retried here: the row keeps its next attempt time
    and monitoring_tick requeues it, so retries span hours and survive worker restarts."""
    try:
        return digest_send(digest_id=digest_id)
    except DigestDeferred:
        return "deferred"
