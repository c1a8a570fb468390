#!/usr/bin/env python
"""Benchmark: 'who is overdue' at two cohort sizes, on PostgreSQL. Prints the plan and
figures; asserts nothing (reliability.md B5: figures from scripts, not timed tests).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alectinib_bench .venv/bin/python scripts/bench_overdue.py

Builds the data in the database named by DATABASE_URL (created if missing; its tables
are emptied first), so point it at a scratch database.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/alectinib_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("DEBUG", "true")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Clinic
    from monitoring.benchmark import build_items, explain_overdue, overdue_queryset
    from monitoring.models import MonitoringItem
    from patients.models import Patient, TreatmentCourse

    call_command("migrate", verbosity=0)
    MonitoringItem.objects.all().delete()
    TreatmentCourse.objects.all().delete()
    Patient.objects.all().delete()
    today = date(2026, 2, 20)
    small, _ = Clinic.objects.get_or_create(code="bench-small", defaults={"name": "Bench small"})
    large, _ = Clinic.objects.get_or_create(code="bench-large", defaults={"name": "Bench large"})
    t0 = time.perf_counter()
    n_small = build_items(clinic_id=small.pk, n=10_000, seed=1, today=today)
    n_large = build_items(clinic_id=large.pk, n=100_000, seed=2, today=today)
    print(f"built {n_small} + {n_large} monitoring items in {time.perf_counter() - t0:.1f} s")
    with connection.cursor() as c:
        c.execute("SELECT version()")
        print(c.fetchone()[0].split(",")[0])
    for clinic, n in ((small, n_small), (large, n_large)):
        qs = overdue_queryset(today=today, clinic_id=clinic.pk)
        list(qs)  # warm
        times = []
        for _ in range(25):
            start = time.perf_counter()
            rows = list(qs.all())  # a fresh queryset each time (no result cache)
            times.append((time.perf_counter() - start) * 1000)
        print(f"\n{clinic.name}: {n} items, {len(rows)} overdue; ORM query median {statistics.median(times):.2f} ms "
              f"(IQR {statistics.quantiles(times, n=4)[0]:.2f}–{statistics.quantiles(times, n=4)[2]:.2f} ms, 25 runs)")
        print(explain_overdue(today=today, clinic_id=clinic.pk))


if __name__ == "__main__":
    main()
