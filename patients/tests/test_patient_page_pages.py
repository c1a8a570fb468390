"""A patient with years of results (issue #14): the results table pages, newest first, and
the page's size and queries do not grow with the number of results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from patients.tests.factories import LabResultFactory, PatientFactory
from patients.views import RESULT_ROWS_PER_PAGE

pytestmark = pytest.mark.django_db


def results(patient, n, start=0):
    now = timezone.now()
    for i in range(start, start + n):
        LabResultFactory(patient=patient, analyte="alt", reported_value=30 + i % 50, reported_unit="U/L",
                         collected_at=now - timedelta(days=7 * i + 1))


def test_results_page_newest_first_and_older_ones_on_the_next_page(client, clinic_a, nurse):
    patient = PatientFactory(clinic=clinic_a)
    results(patient, RESULT_ROWS_PER_PAGE + 5)
    client.force_login(nurse)
    url = reverse("patient_detail", args=[patient.pk])
    first = client.get(url).content.decode()
    table = first.split('data-testid="labs"')[1].split("</table>")[0]
    assert table.count('<th scope="row"') == RESULT_ROWS_PER_PAGE
    assert f"1–{RESULT_ROWS_PER_PAGE} of {RESULT_ROWS_PER_PAGE + 5}" in first
    older = client.get(url + "?results_page=2").content.decode()
    assert older.split('data-testid="labs"')[1].split("</table>")[0].count('<th scope="row"') == 5


def test_patient_page_queries_and_size_do_not_grow_with_the_results(client, clinic_a, nurse, django_assert_num_queries):
    patient = PatientFactory(clinic=clinic_a)
    results(patient, RESULT_ROWS_PER_PAGE * 2)
    client.force_login(nurse)
    url = reverse("patient_detail", args=[patient.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        small = client.get(url)
    results(patient, 150, start=RESULT_ROWS_PER_PAGE * 2)  # 200 results in all
    with django_assert_num_queries(len(queries)):
        large = client.get(url)
    # The table shows 25 collections and each chart's table its newest 20: only the
    # chart's data points grow (a few dozen bytes each).
    assert len(large.content) < len(small.content) + 150 * 200
