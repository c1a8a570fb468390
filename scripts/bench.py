#!/usr/bin/env python
"""make bench: the app against the database's own limit, at hospital scale (issue #14).

    make bench                      # 1k, 10k and 90k patients, 20 results each
    make bench BENCH_ARGS="--sizes 1000,10000 --iterations 15"

Generates the cohort (manage.py generate_cohort: set-based SQL, fixed seed) in a scratch
PostgreSQL database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
alectinib_bench; dropped and created again unless --reuse), then, for each measure, runs
the app and its hand-written counterpart interleaved (app, SQL, app, SQL, …) for
--iterations rounds after a warm-up and prints the median and interquartile range of
each and of their ratio, the queries per page and the bytes per page. The counterpart is
the SQL the page needs, sent straight to PostgreSQL over the same connection: what the
page would cost if rendering were free. Writes the table to var/bench-report.md.

Timings live here, never in timed tests; structural facts (queries per page, index use,
bytes) are tested in the suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/alectinib_bench")
os.environ["DATABASE_URL"] = URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("REDIS_URL", "")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("EMAIL_URL", "smtp://127.0.0.1:8525")  # the sink started below

import django  # noqa: E402
import psycopg  # noqa: E402

RESULTS_FOR_ONE_PATIENT = 200


def scratch_database(reuse: bool) -> bool:
    """Create the scratch database; True when it has to be filled."""
    name, admin = URL.rsplit("/", 1)[1], URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reuse:
            return False
        if exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def interleaved(app, sql, iterations: int) -> dict:
    for _ in range(3):  # warm-up: caches, plans, the session
        app()
        sql()
    a, s = [], []
    for _ in range(iterations):
        a.append(timed(app))
        s.append(timed(sql))
    ratios = [x / y for x, y in zip(a, s, strict=True)]
    return {"app": a, "sql": s, "ratio": ratios}


def summary(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4)
    return f"{statistics.median(values):.1f} (IQR {q[0]:.1f}–{q[2]:.1f})"


RECIPIENTS = 20


def digest_and_tick(size: int, iterations: int, started: float) -> list[str]:
    """Digests of the largest clinic built and sent to RECIPIENTS staff over SMTP (a local
    sink) against raw smtplib pushing the same messages over one connection; and the
    steady-state tick (flag what became overdue, plan digests already claimed) against the
    single-statement versions (UPDATE ... RETURNING, INSERT ... ON CONFLICT DO NOTHING)."""
    import smtplib

    from aiosmtpd.controller import Controller
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Clinic, Membership, Role, User
    from monitoring import services
    from monitoring.models import ClinicSettings, Digest

    class Sink:
        messages: list[bytes] = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            Sink.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=8525)
    controller.start()
    try:
        clinic = Clinic.objects.get(code=f"gen-{size}")
        for i in range(RECIPIENTS):
            user, _ = User.objects.get_or_create(username=f"bench.staff{i}", defaults={"email": f"s{i}@example.org"})
            Membership.objects.get_or_create(user=user, clinic=clinic, role=Role.STAFF)
        Digest.objects.filter(clinic=clinic).delete()
        # The clinic's settings row first (a fresh cohort has none): otherwise planning
        # creates it with the default digest time, and nothing is planned before it.
        ClinicSettings.ensure(clinic.pk)
        ClinicSettings.objects.filter(clinic=clinic).update(last_digest_date=None, digest_time="00:00")
        now = timezone.now()
        services.digests_plan(now=now)
        ids = list(Digest.objects.filter(clinic=clinic, kind=Digest.Kind.DIGEST).values_list("pk", flat=True))
        assert ids, "no digest was planned for the benchmark's clinic"

        def reset() -> None:
            Digest.objects.filter(pk__in=ids).update(status=Digest.Status.PENDING, attempts=0, lease_until=None)

        def app() -> None:
            services.digests_send(digest_ids=ids, now=timezone.now())

        reset()
        Sink.messages.clear()
        app()
        raw_messages = list(Sink.messages)  # the same bytes, pushed again by smtplib

        def raw() -> None:
            with smtplib.SMTP("127.0.0.1", 8525) as smtp:
                for sender, to, body in raw_messages:
                    smtp.sendmail(sender, to, body)

        a, r = [], []
        for _ in range(iterations + 3):
            reset()
            a.append(timed(app))
            r.append(timed(raw))
        a, r = a[3:], r[3:]
        size_bytes = max(len(body) for _, _, body in Sink.messages)
        lines = [f"| digests: build and send {len(ids)} (one clinic) vs raw smtplib | {size:,} | {summary(a)} | "
                 f"{summary(r)} | {summary([x / y for x, y in zip(a, r, strict=True)])} | — | {size_bytes:,} per email |"]
        print(lines[-1], flush=True)

        def tick() -> None:
            services.overdue_flag(now=timezone.now())
            services.digests_plan(now=timezone.now())

        def single() -> None:
            with connection.cursor() as cur:
                cur.execute("UPDATE monitoring_monitoringitem SET flagged_at = now() WHERE flagged_at IS NULL "
                            "AND overdue_from <= current_date RETURNING id")
                cur.fetchall()
                cur.execute("INSERT INTO monitoring_digest (recipient_id, clinic_id, kind, for_date, status, "
                            "to_address, item_count, attempts, last_error, created_at) "
                            "SELECT m.user_id, m.clinic_id, 'digest', current_date, 'pending', '', 0, 0, '', now() "
                            "FROM accounts_membership m WHERE m.role = 'staff' "
                            "ON CONFLICT DO NOTHING RETURNING id")
                cur.fetchall()

        t = interleaved(tick, single, iterations)
        lines.append(f"| tick, steady state (flag + plan) vs single statements | all | {summary(t['app'])} | "
                     f"{summary(t['sql'])} | {summary(t['ratio'])} | — | — |")
        print(lines[-1], flush=True)
        return lines
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,90000")
    parser.add_argument("--results", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="keep a scratch database already filled")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    fill = scratch_database(args.reuse)
    django.setup()

    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from patients.models import Patient

    started = time.monotonic()
    if fill:
        call_command("migrate", verbosity=0)
        call_command("generate_cohort", clinics=args.sizes, results=args.results, seed=0.42)
    print(f"cohort ready in {time.monotonic() - started:.0f} s")
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"):
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
    lines = [f"PostgreSQL {version}; " + ", ".join(f"{k}={v}" for k, v in settings.items()),
             f"{os.cpu_count()} CPUs; {args.iterations} interleaved iterations after 3 warm-up rounds; times in ms", "",
             "| measure | size | app ms | SQL ms | app/SQL | queries | bytes |", "| --- | --- | --- | --- | --- | --- | --- |"]

    def measure(label: str, size: int, client: Client, url: str) -> None:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        statements = [(q["sql"], None) for q in ctx.captured_queries]
        # The counterpart: the reads that return what the page shows (not the session's or
        # the access trail's writes, which the app adds on top).
        reads = [(text, p) for text, p in statements if text.lstrip().upper().startswith(("SELECT", "WITH"))]
        raw = connection.connection  # the same psycopg connection, no ORM

        def sql() -> None:
            with raw.cursor() as cur:
                for text, _ in reads:
                    cur.execute(text)
                    cur.fetchall()

        def app() -> None:
            client.get(url)
            reset_queries()

        r = interleaved(app, sql, args.iterations)
        row = (f"| {label} | {size:,} | {summary(r['app'])} | {summary(r['sql'])} | {summary(r['ratio'])} | "
               f"{len(statements)} ({len(reads)} reads) | {len(response.content):,} |")
        print(row, flush=True)
        lines.append(row)

    for size in sizes:
        nurse = User.objects.get(username=f"nurse.gen-{size}")
        client = Client()
        client.force_login(nurse)
        measure("worklist", size, client, "/")
        measure("cohort overview", size, client, "/cohort/")
    # One patient with 200 results (the generated ones have --results each).
    size = sizes[-1]
    patient = Patient.objects.filter(clinic__code=f"gen-{size}").order_by("pk").first()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO patients_labresult (patient_id, analyte, value, unit, reported_value, reported_unit, uln, lln, "
            "reported_uln, reported_lln, collected_at, source, is_baseline, grade, grade_basis, grading_version, x_uln, "
            "entered_by_id, entered_at, status) "
            "SELECT patient_id, analyte, value, unit, reported_value, reported_unit, uln, lln, reported_uln, reported_lln, "
            "collected_at - make_interval(days => 300 * k), source, is_baseline, grade, grade_basis, grading_version, "
            "x_uln, entered_by_id, entered_at, status FROM patients_labresult, generate_series(1, %s) AS k "
            "WHERE patient_id = %s AND NOT EXISTS (SELECT 1 FROM patients_labresult l2 WHERE l2.patient_id = %s "
            "GROUP BY l2.patient_id HAVING count(*) >= %s)",
            [RESULTS_FOR_ONE_PATIENT // max(args.results, 1) - 1, patient.pk, patient.pk, RESULTS_FOR_ONE_PATIENT])
        cur.execute("SELECT count(*) FROM patients_labresult WHERE patient_id = %s", [patient.pk])
        have = cur.fetchone()[0]
    client = Client()
    client.force_login(User.objects.get(username=f"nurse.gen-{size}"))
    measure(f"patient page ({have} results)", size, client, f"/patients/{patient.pk}/")
    lines += digest_and_tick(sizes[-1], args.iterations, started)
    lines += ["", f"Command: make bench BENCH_ARGS=\"{' '.join(sys.argv[1:])}\"; total {time.monotonic() - started:.0f} s"]
    report = ROOT / "var" / "bench-report.md"
    report.parent.mkdir(exist_ok=True)
    report.write_text("# make bench\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines[:2]))
    print(f"written to {report}")


if __name__ == "__main__":
    main()
