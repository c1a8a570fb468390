"""The worklist at any clinic size (issue #14): each section counted exactly and read a page
at a time in the database, sortable by days overdue, filtered in the database; the page's
size and its queries do not grow with the clinic."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring import selectors
from monitoring.tests.factories import MonitoringItemFactory
from patients.tests.factories import PatientFactory, TreatmentCourseFactory

pytestmark = pytest.mark.django_db


def overdue_items(clinic, n, nurse=None):
    today = timezone.localdate()
    for i in range(n):
        course = TreatmentCourseFactory(patient=PatientFactory(clinic=clinic, mrn=f"OD-{i:04d}", primary_nurse=nurse),
                                        on_drug=True)
        due = today - timedelta(days=i + 1)
        MonitoringItemFactory(course=course, due_date=due, overdue_from=due + timedelta(days=1))


def rows(body: str, testid: str) -> list[str]:
    table = body.split(f'data-testid="{testid}"')[1].split("</table>", maxsplit=1)[0]
    return re.findall(r">(OD-\d{4})<", table)


def test_overdue_is_counted_exactly_and_read_a_page_at_a_time(client, clinic_a, nurse):
    overdue_items(clinic_a, selectors.PAGE_SIZE + 7)
    client.force_login(nurse)
    first = client.get("/").content.decode()
    assert f'data-testid="count-overdue">{selectors.PAGE_SIZE + 7}<' in first
    shown = rows(first, "overdue")
    assert len(shown) == selectors.PAGE_SIZE and shown[0] == f"OD-{selectors.PAGE_SIZE + 6:04d}"  # most overdue first
    assert f"1–{selectors.PAGE_SIZE} of {selectors.PAGE_SIZE + 7}" in first
    second = client.get("/?overdue_page=2").content.decode()
    assert rows(second, "overdue") == [f"OD-{i:04d}" for i in range(6, -1, -1)]
    least = client.get("/?order=least").content.decode()
    assert rows(least, "overdue")[0] == "OD-0000"  # least overdue first


def test_filters_are_applied_in_the_database_before_the_page(client, clinic_a, nurse, prescriber):
    overdue_items(clinic_a, selectors.PAGE_SIZE + 5)  # no nurse
    today = timezone.localdate()
    mine = TreatmentCourseFactory(patient=PatientFactory(clinic=clinic_a, mrn="MINE-1", primary_nurse=nurse), on_drug=True)
    MonitoringItemFactory(course=mine, due_date=today - timedelta(days=1), overdue_from=today)
    client.force_login(nurse)
    body = client.get(f"/?nurse={nurse.pk}").content.decode()
    assert 'data-testid="count-overdue">1<' in body and "MINE-1" in body
    response = client.post("/", {"mrn": "mine"})
    assert response.status_code == 302 and "mine" not in response["Location"].lower()  # never in a URL
    body = client.get(response["Location"]).content.decode()
    assert 'data-testid="count-overdue">1<' in body and "MINE-1" in body
    # Kept by the page's links and the export until cleared.
    assert client.get("/?order=least").content.decode().count("MINE-1") >= 1
    csv_lines = b"".join(client.get("/?export=csv").streaming_content).decode().splitlines()
    assert [line.split(",")[2] for line in csv_lines[1:] if line.startswith("overdue,")] == ["MINE-1"]
    cleared = client.get("/?clear_mrn=1").content.decode()
    assert f'data-testid="count-overdue">{selectors.PAGE_SIZE + 6}<' in cleared


def test_page_size_and_queries_do_not_grow_with_the_clinic(client, clinic_a, nurse, django_assert_num_queries):
    overdue_items(clinic_a, selectors.PAGE_SIZE * 2)  # two pages already
    client.force_login(nurse)
    client.get("/")  # sessions and caches warm
    with CaptureQueriesContext(connection) as queries:
        small = client.get("/")
    overdue_items_more = selectors.PAGE_SIZE * 3
    today = timezone.localdate()
    for i in range(overdue_items_more):
        course = TreatmentCourseFactory(patient=PatientFactory(clinic=clinic_a, mrn=f"MORE-{i:04d}"), on_drug=True)
        MonitoringItemFactory(course=course, due_date=today - timedelta(days=400 + i),
                              overdue_from=today - timedelta(days=399 + i))
    with django_assert_num_queries(len(queries)):
        large = client.get("/")
    assert f'data-testid="count-overdue">{selectors.PAGE_SIZE * 5}<' in large.content.decode()
    body = large.content.decode()
    overdue_rows = body.split('data-testid="overdue"')[1].split("</table>")[0].count("<tr id=")
    assert overdue_rows == selectors.PAGE_SIZE == small.content.decode().split('data-testid="overdue"')[1] \
        .split("</table>")[0].count("<tr id=")  # the same 50 rows, whatever the backlog
    assert len(large.content) < 300_000  # issue #14: under 300 KB


def test_csv_streams_every_row(client, clinic_a, nurse):
    overdue_items(clinic_a, selectors.PAGE_SIZE + 3)
    client.force_login(nurse)
    response = client.get("/?export=csv")
    assert response.streaming
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert sum(1 for line in lines if line.startswith("overdue,")) == selectors.PAGE_SIZE + 3


def test_most_overdue_first_counts_from_the_due_date_not_a_lapsed_snooze(client, clinic_a, nurse):
    overdue_items(clinic_a, 3)  # OD-0002 is the most overdue (3 days)
    today = timezone.localdate()
    # Due 40 days ago, followed up, the snooze over yesterday: overdue again, by 40 days.
    course = TreatmentCourseFactory(patient=PatientFactory(clinic=clinic_a, mrn="OD-LAPSE"), on_drug=True)
    MonitoringItemFactory(course=course, due_date=today - timedelta(days=40), snoozed_until=today - timedelta(days=1),
                          overdue_from=today)
    client.force_login(nurse)
    body = client.get("/").content.decode()
    table = body.split('data-testid="overdue"')[1].split("</table>")[0]
    assert re.findall(r">(OD-[\w]+)<", table)[0] == "OD-LAPSE"


def test_the_tasks_the_web_enqueues_by_name_are_registered_in_a_fresh_process():
    """The web process enqueues by registered name (the outbox's Retry, digest planning):
    MonitoringConfig.ready imports monitoring.tasks, so every process knows them, not only
    a worker (a fresh interpreter here, as gunicorn's)."""
    import subprocess
    import sys

    from django.conf import settings

    from monitoring import services

    code = ("import django; django.setup(); from celery import current_app; "
            f"print({services.SEND_DIGESTS_TASK!r} in current_app.tasks, {services.FULL_SWEEP_TASK!r} in current_app.tasks)")
    out = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"})
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]
