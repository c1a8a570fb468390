"""Faults of reliability.md §A7 injected into real processes (see conftest.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from faults.conftest import wait_until

pytestmark = pytest.mark.faults


def tick(stack) -> None:
    """Enqueue one monitoring tick through the broker, as beat would."""
    stack.manage("shell", "-c", "from monitoring.tasks import monitoring_tick; monitoring_tick.delay()")


def fresh_digests(stack, sink) -> None:
    stack.psql("DELETE FROM monitoring_digest")
    stack.psql("UPDATE monitoring_clinicsettings SET last_digest_date = NULL")
    sink.messages.clear()
    sink.mode = "ok"


def digest_row(stack) -> dict[str, str]:
    row = stack.psql("SELECT status, attempts, coalesce(last_error, ''), next_attempt_at IS NOT NULL "
                     "FROM monitoring_digest ORDER BY id LIMIT 1")
    status, attempts, error, retry = (row.split("|") + ["", "", "", ""])[:4]
    return {"status": status, "attempts": attempts, "error": error, "retry": retry}


@contextlib.contextmanager
def table_locked(stack, table: str):
    """Hold an exclusive lock on `table` from another session: a task that writes to it
    blocks there, mid-run, until the block ends."""
    locker = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(stack.pg_port), "-U", "postgres", "-d", "stack"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    locker.stdin.write(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT 1;\n")
    locker.stdin.flush()
    time.sleep(1)
    try:
        yield
    finally:
        locker.stdin.write("ROLLBACK;\n\\q\n")
        locker.stdin.flush()
        locker.wait(timeout=10)


@contextlib.contextmanager
def worker_with(stack, name: str, **env: str):
    """The stack's worker replaced by one with other settings (e.g. another SMTP server)."""
    stack.stop("worker")
    stack.start_worker(name=name, **env)
    try:
        yield
    finally:
        stack.stop(name)
        stack.start_worker()


def sweep_started(stack) -> None:
    log = (stack.dir / "worker.log").read_text(errors="replace")
    stack.manage("shell", "-c", "from monitoring.tasks import monitoring_full_sweep; monitoring_full_sweep.delay()")
    wait_until(lambda: "monitoring.tasks.monitoring_full_sweep" in (stack.dir / "worker.log").read_text(
        errors="replace")[len(log):], timeout=30)
    time.sleep(2)  # running, blocked on the lock


def sweeps_done(stack) -> str:
    return stack.psql("SELECT coalesce(max(runs), 0) FROM monitoring_heartbeat WHERE name = 'monitoring_full_sweep'")


def sent_count(stack) -> int:
    return int(stack.psql("SELECT count(*) FROM monitoring_digest WHERE status = 'sent'") or 0)


@pytest.mark.case("F4", "Redis stopped under load")
def test_f4_pages_work_and_health_reports_the_broker_while_redis_is_down(stack, nurse_session):
    patient = stack.psql("SELECT id FROM patients_patient LIMIT 1")
    stack.stop("redis")
    try:
        assert nurse_session.get(stack.url(f"/patients/{patient}/"), timeout=30).status_code == 200
        assert nurse_session.get(stack.url("/"), timeout=30).status_code == 200
        health = nurse_session.get(stack.url("/health/"), timeout=30).json()
        assert health["broker"] == "down" and health["status"] == "degraded" and health["database"] == "ok"
    finally:
        stack.start_redis()
    beat_before = stack.psql("SELECT coalesce(max(runs), 0) FROM monitoring_heartbeat WHERE name = 'heartbeat'")
    stack.manage("shell", "-c", "from monitoring.tasks import heartbeat; heartbeat.delay()")
    wait_until(lambda: stack.psql("SELECT coalesce(max(runs), 0) FROM monitoring_heartbeat WHERE name = 'heartbeat'")
               != beat_before, timeout=60)  # the worker reconnected and consumes again


@pytest.mark.case("F5", "Redis restarted empty (queued messages gone)")
def test_f5_lost_queue_is_rederived_from_the_database(stack, sink):
    fresh_digests(stack, sink)
    stack.stop("worker")
    tick(stack)  # the tick waits in Redis…
    stack.stop("redis")  # …and is lost with it (no persistence)
    stack.start_redis()
    stack.start_worker()
    tick(stack)  # the next tick plans and sends from the rows
    wait_until(lambda: sent_count(stack) >= 1, timeout=90)
    tick(stack)
    time.sleep(5)
    assert len(sink.messages) == sent_count(stack), "exactly one copy per digest"


@pytest.mark.case("F6", "SMTP down (connection refused)")
def test_f6_smtp_down_keeps_the_row_pending_with_backoff(stack, sink):
    fresh_digests(stack, sink)
    with worker_with(stack, "worker-nosmtp", EMAIL_URL="smtp://127.0.0.1:1"):
        tick(stack)
        wait_until(lambda: digest_row(stack)["attempts"] == "1" and digest_row(stack)["status"] == "pending")
        row = digest_row(stack)
        assert row["retry"] == "t" and "ConnectionRefusedError" in row["error"]


@pytest.mark.case("F7", "SMTP black hole (accepts, never answers)")
def test_f7_a_silent_smtp_server_fails_the_attempt_within_the_timeout(stack, sink):
    from stack import BlackHole

    fresh_digests(stack, sink)
    with BlackHole() as hole, worker_with(stack, "worker-hole", EMAIL_URL=f"smtp://127.0.0.1:{hole.port}"):
        started = time.monotonic()
        tick(stack)
        wait_until(lambda: digest_row(stack)["attempts"] == "1" and digest_row(stack)["status"] == "pending",
                   timeout=60)
        assert time.monotonic() - started < 40, "EMAIL_TIMEOUT bounds the attempt; the worker is not stuck"
        assert "timed out" in digest_row(stack)["error"].lower() or "Timeout" in digest_row(stack)["error"]


@pytest.mark.case("F8", "SMTP transient error (451) once, then OK")
def test_f8_a_transient_refusal_is_retried_and_delivered_once(stack, sink):
    fresh_digests(stack, sink)
    sink.mode = "451"
    tick(stack)
    wait_until(lambda: digest_row(stack)["attempts"] == "1" and digest_row(stack)["status"] == "pending")
    sink.mode = "ok"
    stack.psql("UPDATE monitoring_digest SET next_attempt_at = now() - interval '1 second'")  # its time has come
    tick(stack)
    wait_until(lambda: sent_count(stack) >= 1)
    assert len(sink.messages) == sent_count(stack)


@pytest.mark.case("F9", "SMTP permanent error (550 user unknown)")
def test_f9_a_permanent_refusal_fails_at_once(stack, sink):
    fresh_digests(stack, sink)
    sink.mode = "550"
    tick(stack)
    wait_until(lambda: digest_row(stack)["status"] == "failed")
    assert digest_row(stack)["attempts"] == "1" and "550" in digest_row(stack)["error"]
    sink.mode = "ok"


@pytest.mark.case("F10", "PostgreSQL restarted under load")
def test_f10_the_app_recovers_without_restarting_web_or_worker(stack, nurse_session):
    patient = stack.psql("SELECT id FROM patients_patient LIMIT 1")
    assert nurse_session.get(stack.url(f"/patients/{patient}/"), timeout=30).status_code == 200
    stack.stop_postgres("fast")
    try:
        response = nurse_session.get(stack.url(f"/patients/{patient}/"), timeout=30)
        assert response.status_code >= 500 and "Traceback" not in response.text
        assert "Gen" not in response.text, "no patient data on the error page"
    finally:
        stack.start_postgres()
    wait_until(lambda: nurse_session.get(stack.url(f"/patients/{patient}/"), timeout=30).status_code == 200,
               timeout=30)
    runs = stack.psql("SELECT coalesce(max(runs), 0) FROM monitoring_heartbeat WHERE name = 'monitoring_tick'")
    tick(stack)
    wait_until(lambda: stack.psql("SELECT coalesce(max(runs), 0) FROM monitoring_heartbeat "
                                  "WHERE name = 'monitoring_tick'") != runs, timeout=90)


@pytest.mark.case("F1", "kill -9 the whole worker mid-task")
def test_f1_a_killed_worker_s_task_is_redelivered_and_runs_once(stack, sink):
    stack.psql("DELETE FROM monitoring_heartbeat WHERE name = 'monitoring_full_sweep'")
    worker = stack.procs["worker"]
    with table_locked(stack, "monitoring_heartbeat"):
        sweep_started(stack)
        stack.stop("worker", sig=signal.SIGKILL)
    assert worker.poll() is not None
    assert sweeps_done(stack) == "0", "the sweep did not finish before the kill"
    stack.start_worker()
    # acks_late: the message comes back after the visibility timeout (20 s here) and runs once.
    wait_until(lambda: sweeps_done(stack) == "1", timeout=120)
    time.sleep(5)
    assert sweeps_done(stack) == "1"


@pytest.mark.case("F2", "kill -9 only the pool child (the OOM killer)")
def test_f2_a_task_lost_with_its_pool_child_is_made_up_by_the_next_tick(stack, sink):
    """With reject_on_worker_lost off, the message of a killed child is acked and lost; the
    next tick sees the daily sweep missing and runs it (monitoring.services.full_sweep_due)."""
    stack.psql("DELETE FROM monitoring_heartbeat WHERE name IN ('monitoring_full_sweep', "
               "'monitoring_full_sweep_claim')")
    worker = stack.procs["worker"]
    with table_locked(stack, "monitoring_heartbeat"):
        sweep_started(stack)
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        assert children, "a prefork pool child runs the task"
        os.kill(int(children[0]), signal.SIGKILL)
    time.sleep(3)
    assert worker.poll() is None, "the main worker process survives and forks a new child"
    assert sweeps_done(stack) == "0"
    tick(stack)  # the next tick: the sweep is due and not done, so it runs it
    wait_until(lambda: sweeps_done(stack) == "1", timeout=120)


@pytest.mark.case("F12", "two overlapping ticks")
def test_f12_overlapping_ticks_send_no_duplicate(stack, sink):
    fresh_digests(stack, sink)
    stack.start_worker(name="worker-2")
    try:
        for _ in range(4):
            tick(stack)
        wait_until(lambda: sent_count(stack) >= 1, timeout=60)
        time.sleep(5)
        assert len(sink.messages) == sent_count(stack)
        dupes = stack.psql("SELECT count(*) - count(DISTINCT (recipient_id, clinic_id, kind, for_date)) "
                           "FROM monitoring_digest")
        assert dupes == "0"
    finally:
        stack.stop("worker-2")


@pytest.mark.case("F11", "beat stopped, then restarted")
def test_f11_health_reports_a_stopped_scheduler_and_beat_catches_up_once(stack, nurse_session):
    stack.start_beat()
    wait_until(lambda: nurse_session.get(stack.url("/health/"), timeout=30).json().get("scheduler") == "ok", timeout=60)
    stack.stop("beat")
    wait_until(lambda: nurse_session.get(stack.url("/health/"), timeout=30).json().get("scheduler") == "stale",
               timeout=60)
    stack.start_beat()
    wait_until(lambda: nurse_session.get(stack.url("/health/"), timeout=30).json().get("scheduler") == "ok", timeout=60)
    stack.stop("beat")
