"""The worklist (the home page): pending recommendations and holds, overdue and due-soon
monitoring; its pinned query count. Filters, export and print are in test_dashboards.py."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.tests.scenario import items
from patients.models import Recommendation
from patients.recommendations import recommendation_accept
from patients.services import LabEntry, lab_panel_record
from patients.tests.factories import PatientFactory, clinic_ranges, started_patient

pytestmark = pytest.mark.django_db

# Pinned (Zulip's assert_database_query_count): a change is a decision, seen in review.
# The same on SQLite and PostgreSQL.
# Each section is counted (COUNT) and paged (LIMIT) in the database (issue #14); sections
# with no rows skip the page query.
WORKLIST_QUERIES = 25  # + supply and education (issue #16)


def high_alt(patient, user, hours_ago=1):
    lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(hours=hours_ago),
                     entries=[LabEntry("alt", "260")], entered_by=user)


def test_worklist_lists_pending_recommendations_and_holds(client, clinic_a, clinic_b, nurse, prescriber,
                                                         outsider, outsider_prescriber):
    clinic_ranges(clinic_a)
    clinic_ranges(clinic_b)
    waiting = started_patient(clinic_a, prescriber, mrn="WAIT-1")
    held = started_patient(clinic_a, prescriber, mrn="HELD-1")
    other = started_patient(clinic_b, outsider_prescriber, mrn="OTHER-1")
    high_alt(waiting, nurse)
    high_alt(held, nurse, hours_ago=5)
    recommendation_accept(recommendation=Recommendation.objects.get(course__patient=held), user=prescriber)
    high_alt(other, outsider)
    client.force_login(nurse)
    page = client.get(reverse("home")).content.decode()
    assert "WAIT-1" in page and "Withhold; resume at 450 mg" in page
    assert "HELD-1" in page and "ALT ≤ 3× ULN or back to baseline" in page and "260 U/L (6.5× ULN)" in page
    assert "OTHER-1" not in page


def test_worklist_query_count_does_not_grow(client, clinic_a, nurse, prescriber, django_assert_num_queries):
    clinic_ranges(clinic_a)
    client.force_login(nurse)
    high_alt(started_patient(clinic_a, prescriber), nurse)
    held = started_patient(clinic_a, prescriber)
    high_alt(held, nurse)
    recommendation_accept(recommendation=Recommendation.objects.get(course__patient=held), user=prescriber)
    with django_assert_num_queries(WORKLIST_QUERIES):
        client.get(reverse("home"))
    for i in range(8):
        p = started_patient(clinic_a, prescriber)
        high_alt(p, nurse, hours_ago=2)
        if i % 2:
            recommendation_accept(recommendation=Recommendation.objects.get(course__patient=p), user=prescriber)
    with django_assert_num_queries(WORKLIST_QUERIES):  # and does not grow with the data
        client.get(reverse("home"))


@pytest.mark.usefixtures("frozen")  # the scenario's 20 Feb 2026 (monitoring/tests/scenario.py)
def test_worklist_shows_overdue_and_due_soon(course, nurse, client, clinic_a, prescriber):
    from patients.services import course_start

    items(course)
    soon = course_start(patient=PatientFactory(clinic=clinic_a, mrn="A-SOON"), start_date=date(2026, 2, 8),
                        ordered_by=prescriber, recorded_by=prescriber)
    items(soon)
    client.force_login(nurse)
    body = client.get(reverse("home")).content.decode()
    assert "A-0042" in body and "32 days overdue" in body  # due 19 Jan
    assert "A-SOON" in body and "due Sun 22 Feb" in body
