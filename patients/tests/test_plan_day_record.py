"""Issue 8, desensitization: the day-record form pre-ticked both doses and let the evening
dose be recorded in the morning; after a reaction the plan showed the missed-dose
guidance; a start or resume date of 9999-12-31 was a 500. Through the pages.

The clinic is in London; the plan starts on Monday 2 Mar 2026. The evening dose is
recorded from 16:00 clinic time (protocols.desensitization.EVENING_DOSE_FROM)."""

from __future__ import annotations

import html
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from patients.desensitization import plan_start, plans_flag_missed
from patients.models import DesensitizationPlan
from patients.services import clinical_event_record, dose_change_record
from patients.tests.factories import clinic_ranges, started_patient
from protocols.desensitization import REACTION_GUIDANCE, TOLERANCE_WARNING
from protocols.dosing import Dose, DoseState, Reason
from protocols.models import DesensitizationProtocol

pytestmark = pytest.mark.django_db
LONDON = ZoneInfo("Europe/London")
TODAY = date(2026, 3, 2)
BORN = date(1960, 5, 17)


def at(hour: int, minute: int = 0, *, on: date = TODAY):
    return time_machine.travel(datetime.combine(on, time(hour, minute), tzinfo=LONDON), tick=False)


@pytest.fixture(autouse=True)
def frozen():
    with at(9):
        yield


@pytest.fixture
def seegobin():
    return DesensitizationProtocol.objects.get(clinic__isnull=True, name__startswith="Seegobin")


@pytest.fixture
def patient(clinic_a, prescriber, nurse):
    clinic_ranges(clinic_a)
    p = started_patient(clinic_a, prescriber, days_ago=60, date_of_birth=BORN)
    rash = clinical_event_record(patient=p, recorded_by=nurse, kind="rash", grade=3, rash_bsa_percent=45,
                                 onset_date=TODAY - timedelta(days=40), resolved_date=TODAY - timedelta(days=10))
    dose_change_record(course=p.courses.get(), to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=600),
                       effective_date=TODAY - timedelta(days=40), reason=Reason.TOXICITY, toxicity="Rash",
                       triggering_event=rash, ordered_by=prescriber, recorded_by=prescriber)
    p.rash = rash
    return p


@pytest.fixture
def plan(patient, seegobin, prescriber):
    return plan_start(patient=patient, protocol=seegobin, rash_event=patient.rash, start=TODAY, user=prescriber)


def plan_url(plan):
    return reverse("plan_detail", args=[plan.patient_id, plan.pk])


def record(client, user, plan, number=1, **data):
    client.force_login(user)  # signed in at the time of the post: sessions die after idle minutes
    day = plan.days.get(number=number, cancelled=False)
    response = client.post(reverse("plan_record_day", args=[plan.patient_id, plan.pk, day.pk]), data, follow=True)
    assert response.status_code == 200
    day.refresh_from_db()
    return html.unescape(response.content.decode()), day


# --- the form --------------------------------------------------------------------------------


def test_no_dose_is_pre_chosen_and_the_evening_waits_for_1600(client, nurse, plan):
    client.force_login(nurse)
    page = client.get(plan_url(plan)).content.decode()
    form = page[page.index('action="' + reverse("plan_record_day", args=[plan.patient_id, plan.pk, plan.days.get(number=1).pk])):]
    form = form[:form.index("</form>")]
    assert 'type="radio" name="morning_taken"' in form and 'type="radio" name="evening_taken"' in form
    assert "checked" not in form
    assert 'data-testid="evening-dose" disabled' in form and "recorded from 16:00 (clinic time)" in form
    with at(16):
        page = client.get(plan_url(plan)).content.decode()
    assert 'data-testid="evening-dose" disabled' not in page


def test_the_evening_dose_is_refused_at_1559_and_accepted_at_1600(client, nurse, plan):
    client.force_login(nurse)
    with at(15, 59):
        page, day = record(client, nurse, plan, morning_taken="taken", evening_taken="taken")
    assert "cannot be recorded before 16:00 (clinic time)" in page and not day.recorded
    with at(16, 0):
        page, day = record(client, nurse, plan, morning_taken="taken", evening_taken="taken")
    assert "Day 1 recorded." in page
    assert (day.morning_taken, day.evening_taken) == (True, True)


def test_a_missed_evening_is_not_recorded_in_the_morning_either(client, nurse, plan):
    client.force_login(nurse)
    with at(10):
        page, day = record(client, nurse, plan, morning_taken="taken", evening_taken="missed")
    assert "cannot be recorded before 16:00" in page and not day.recorded
    assert DesensitizationPlan.objects.get().status == "active"


def test_the_morning_alone_waits_for_the_evening(client, nurse, plan):
    client.force_login(nurse)
    with at(10):
        page, day = record(client, nurse, plan, morning_taken="taken")
    assert "The evening dose is due from 16:00 (clinic time): record day 1 after then" in page and not day.recorded


def test_unanswered_doses_are_not_read_as_missed(client, nurse, plan):
    client.force_login(nurse)
    with at(20):
        page, day = record(client, nurse, plan, morning_taken="garbage")
    assert "Say whether the morning and the evening dose was taken or missed." in page
    assert not day.recorded and DesensitizationPlan.objects.get().status == "active"


def test_a_day_in_the_future_cannot_be_recorded(client, nurse, plan):
    client.force_login(nurse)
    with at(20):
        record(client, nurse, plan, 1, morning_taken="taken", evening_taken="taken")
        page, day2 = record(client, nurse, plan, 2, morning_taken="taken", evening_taken="taken")
    assert "This day has not come yet." in page and not day2.recorded
    with at(0, 0, on=TODAY + timedelta(days=1)):  # day 2 has come; its evening has not
        page, day2 = record(client, nurse, plan, 2, morning_taken="taken", evening_taken="taken")
    assert "cannot be recorded before 16:00" in page and not day2.recorded


def test_a_reaction_grade_that_is_not_1_to_4_is_a_message(client, nurse, plan):
    client.force_login(nurse)
    page, day = record(client, nurse, plan, morning_taken="taken", reaction="on", reaction_grade="²")
    assert "Give the CTCAE grade of the reaction." in page and not day.recorded


# --- after a reaction: the reaction guidance ------------------------------------------------------


def test_a_reaction_in_the_morning_pauses_with_the_reaction_guidance(client, nurse, plan):
    client.force_login(nurse)
    with at(10):
        page, day = record(client, nurse, plan, morning_taken="taken", reaction="on", reaction_grade="2", note="Itchy")
    assert "Plan paused. Reaction (grade 2) on day 1" in page
    assert (day.morning_taken, day.evening_taken, day.reaction) == (True, None, True)
    page = html.unescape(client.get(plan_url(plan)).content.decode())
    guidance = page[page.index('data-testid="pause-guidance"'):]
    guidance = guidance[:guidance.index("</p>")]
    assert REACTION_GUIDANCE in guidance and TOLERANCE_WARNING not in guidance
    assert "✓ morning · – evening not recorded" in page


def test_a_missed_dose_keeps_the_missed_dose_guidance(client, nurse, plan):
    client.force_login(nurse)
    with at(10):
        page, day = record(client, nurse, plan, morning_taken="missed")
    assert "Dose missed on day 1" in page and day.recorded
    page = html.unescape(client.get(plan_url(plan)).content.decode())
    assert TOLERANCE_WARNING in page and REACTION_GUIDANCE not in page


def test_after_a_decision_a_later_missed_day_shows_the_missed_dose_guidance(client, nurse, prescriber, plan):
    client.force_login(nurse)
    with at(10):
        record(client, nurse, plan, morning_taken="taken", reaction="on", reaction_grade="1")
    with at(11):
        client.force_login(prescriber)
        plan.refresh_from_db()
        client.post(reverse("plan_decide", args=[plan.patient_id, plan.pk]),
                    {"decision": "repeat", "reason": "Mild; antihistamine", "resume_on": (TODAY + timedelta(days=1)).isoformat(),
                     "version": plan.version})
    assert DesensitizationPlan.objects.get().status == "active"
    assert plans_flag_missed(today=TODAY + timedelta(days=2)) == 1  # the resumed day went unrecorded
    page = html.unescape(client.get(plan_url(plan)).content.decode())
    assert TOLERANCE_WARNING in page and REACTION_GUIDANCE not in page


# --- start and resume dates --------------------------------------------------------------------


def preview(client, patient, seegobin, start: str):
    response = client.get(reverse("plan_create", args=[patient.pk]),
                          {"protocol": seegobin.pk, "rash_event": patient.rash.pk, "start_date": start})
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_plan_starts_at_most_a_year_ahead(client, prescriber, patient, seegobin):
    client.force_login(prescriber)
    assert 'data-testid="plan-preview"' in preview(client, patient, seegobin, (TODAY + timedelta(days=365)).isoformat())
    page = preview(client, patient, seegobin, (TODAY + timedelta(days=366)).isoformat())
    assert "Start date: This date is more than a year ahead" in page and 'data-testid="plan-preview"' not in page
    page = preview(client, patient, seegobin, "9999-12-31")  # was an OverflowError
    assert "more than a year ahead" in page
    response = client.post(reverse("plan_create", args=[patient.pk]),
                           {"protocol": seegobin.pk, "rash_event": patient.rash.pk, "start_date": "9999-12-31"}, follow=True)
    assert response.status_code == 200 and "more than a year ahead" in html.unescape(response.content.decode())
    assert not DesensitizationPlan.objects.exists()


@pytest.mark.parametrize(("last_dose", "problem"), [
    (TODAY, None),
    (TODAY + timedelta(days=1), "cannot be in the future"),
    (BORN, None),
    (BORN - timedelta(days=1), "is before the patient's date of birth"),
])
def test_the_last_checkpoint_inhibitor_dose(client, prescriber, patient, seegobin, last_dose, problem):
    client.force_login(prescriber)
    response = client.post(reverse("plan_create", args=[patient.pk]), {
        "protocol": seegobin.pk, "rash_event": patient.rash.pk, "start_date": TODAY.isoformat(),
        "prior_checkpoint_inhibitor": "on", "checkpoint_inhibitor_last_dose": last_dose.isoformat()}, follow=True)
    if problem is None:
        assert DesensitizationPlan.objects.get().checkpoint_inhibitor_last_dose == last_dose
    else:
        assert f"Last checkpoint-inhibitor dose: This date {problem}" in html.unescape(response.content.decode())
        assert not DesensitizationPlan.objects.exists()


@pytest.mark.parametrize(("resume_on", "problem"), [
    (TODAY + timedelta(days=365), None),
    (TODAY + timedelta(days=366), "more than a year ahead"),
    (date(9999, 12, 31), "more than a year ahead"),  # was an OverflowError
])
def test_a_plan_resumes_at_most_a_year_ahead(client, nurse, prescriber, plan, resume_on, problem):
    client.force_login(nurse)
    with at(10):
        record(client, nurse, plan, morning_taken="taken", reaction="on", reaction_grade="1")
    client.force_login(prescriber)
    plan.refresh_from_db()
    response = client.post(reverse("plan_decide", args=[plan.patient_id, plan.pk]),
                           {"decision": "continue", "reason": "Mild", "resume_on": resume_on.isoformat(),
                            "version": plan.version}, follow=True)
    assert response.status_code == 200
    plan.refresh_from_db()
    if problem is None:
        assert plan.status == "active"
        assert plan.days.filter(cancelled=False, recorded_at__isnull=True).order_by("date").first().date == resume_on
    else:
        assert f"Resume on: This date is {problem}" in html.unescape(response.content.decode())
        assert plan.status == "paused" and not plan.decisions.exists()
