"""EXPLAIN of every worklist query on a generated cohort large enough for the planner to
care (issue #14): no sequential scan of the patient, course, lab-result or monitoring-item
tables, for the page and for its count."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.models import User
from monitoring import selectors

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
