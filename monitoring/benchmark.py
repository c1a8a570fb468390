"""Data and EXPLAIN for the overdue query, shared by the benchmark script and the test
that checks the plan uses the index (reliability.md B2/B5: structural checks in CI,
timings in a script)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from django.db import connection

from monitoring.models import MonitoringItem, Requirement
from monitoring.rules import overdue_from
from patients.models import Patient, TreatmentCourse


def build_items(*, clinic_id: int, course: TreatmentCourse | None = None, n: int = 20000, seed: int = 7,
                today: date | None = None, overdue_share: float = 0.05) -> int:
    """n monitoring items for the clinic (7 requirements per course), about
    `overdue_share` of them overdue, then ANALYZE."""
    rng = random.Random(seed)
    today = today or date(2026, 2, 20)
    reqs = list(Requirement.objects.filter(clinic__isnull=True))
    per = len(reqs)
    n_courses = max(1, n // per)
    prefix = f"B{seed}-"
    patients = Patient.objects.bulk_create(
        Patient(clinic_id=clinic_id, mrn=f"{prefix}{i:07d}", first_name="Bench", last_name=f"P{i}",
                date_of_birth=date(1960, 1, 1), sex="U")
        for i in range(n_courses)
    )
    courses = TreatmentCourse.objects.bulk_create(
        TreatmentCourse(patient=p, start_date=today - timedelta(days=rng.randint(0, 700)), dose_state="on_drug",
                        dose_mg_bid=600)
        for p in patients
    )
    rows = []
    for c in courses:
        for r in reqs:
            if rng.random() < overdue_share:
                due = today - timedelta(days=rng.randint(1, 60))
            else:
                due = today + timedelta(days=rng.randint(0, 30))
            rows.append(MonitoringItem(course=c, clinic_id=clinic_id, requirement=r, due_date=due,
                                       overdue_from=overdue_from(due)))
    MonitoringItem.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitoring_monitoringitem")
    return len(rows)


def overdue_queryset(*, today: date, clinic_id: int):
    return MonitoringItem.objects.filter(clinic_id=clinic_id).overdue(today).order_by("overdue_from")


def explain_overdue(*, today: date, clinic_id: int) -> str:
    sql, params = overdue_queryset(today=today, clinic_id=clinic_id).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())
