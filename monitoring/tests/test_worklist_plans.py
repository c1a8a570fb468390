"""EXPLAIN of every worklist, patient-page and scan query on a generated cohort large
enough for the planner to care (issue #14): no sequential scan of the patient, course,
lab-result or monitoring-item tables."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from monitoring import selectors
from monitoring.models import MonitoringItem
from patients.models import Patient

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="EXPLAIN plans are checked on PostgreSQL")]

BIG_TABLES = {"patients_patient", "patients_treatmentcourse", "patients_labresult", "monitoring_monitoringitem"}


def plan_of(sql: str, params) -> str:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


@pytest.mark.parametrize("filters", [selectors.Filters(), selectors.Filters(requirement="lft"),
                                     selectors.Filters(mrn="G00012")], ids=["all", "test", "mrn"])
def test_no_worklist_query_scans_a_big_table(filters):
    call_command("generate_cohort", clinics="20000", results=3, seed=0.42, stdout=io.StringIO())
    nurse = User.objects.get(username="nurse.gen-20000")
    days = selectors.clinic_days(user=nurse, now=timezone.now())
    found = {}
    for name, qs in selectors.worklist_querysets(user=nurse, days=days, filters=filters).items():
        page_sql = qs[:selectors.PAGE_SIZE].query.sql_with_params()
        inner, params = qs.order_by().values("pk").query.sql_with_params()
        for label, (sql, p) in (("page", page_sql), ("count", (f"SELECT count(*) FROM ({inner}) s", params))):
            scans = set(re.findall(r"Seq Scan on (\w+)", plan_of(sql, p))) & BIG_TABLES
            if scans:
                found[f"{name} {label}"] = sorted(scans)
    assert not found, found


def test_no_patient_page_or_scan_query_scans_a_big_table(client):
    call_command("generate_cohort", clinics="20000", results=3, seed=0.42, stdout=io.StringIO())
    nurse = User.objects.get(username="nurse.gen-20000")
    patient = Patient.objects.filter(clinic__code="gen-20000").order_by("pk").first()
    client.force_login(nurse)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("patient_detail", args=[patient.pk])).status_code == 200
    reads = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    # The tick's scan for newly overdue items (monitoring.services.overdue_flag).
    clinic = patient.clinic
    unflagged = MonitoringItem.objects.filter(clinic=clinic, flagged_at__isnull=True).overdue(timezone.localdate())
    scan_sql, scan_params = unflagged.order_by("overdue_from", "pk").values_list("pk", flat=True)[:2000] \
        .query.sql_with_params()
    found = {}
    for sql, params in [(sql, None) for sql in reads] + [(scan_sql, scan_params)]:
        scans = set(re.findall(r"Seq Scan on (\w+)", plan_of(sql, params))) & BIG_TABLES
        if scans:
            found[sql[:120]] = sorted(scans)
    assert len(reads) >= 10 and not found, found
    # With a backlog of flagged items (generate_cohort flags what is overdue), the scan reads
    # only the unflagged ones, through the partial index, whatever the backlog.
    assert "item_unflagged_idx" in plan_of(scan_sql, scan_params)
