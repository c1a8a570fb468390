from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from patients.models import Recommendation
from patients.recommendations import recommendation_accept
from patients.services import LabEntry, lab_panel_record
from patients.tests.factories import clinic_ranges, started_patient

pytestmark = pytest.mark.django_db


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
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("home"))
    count = len(small.captured_queries)
    for i in range(8):
        p = started_patient(clinic_a, prescriber)
        high_alt(p, nurse, hours_ago=2)
        if i % 2:
            recommendation_accept(recommendation=Recommendation.objects.get(course__patient=p), user=prescriber)
    with django_assert_num_queries(count):
        client.get(reverse("home"))
