"""Issue 8, desensitization: the day-record form pre-ticked both doses and let the evening
dose be recorded in the morning; after a reaction the plan showed the missed-dose
guidance; a start or resume date of 9999-12-31 was a 500. Through the pages.

The clinic is in London; the plan starts on Monday 2 Mar 2026. The evening dose is
recorded from 16:00 clinic time (protocols.desensitization.EVENING_DOSE_FROM)."""

from __future__ import annotations

import html
import re
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
    return reverse("plan_detail", args=[plan.course.patient_id, plan.pk])


def record(client, user, plan, number=1, **data):
    client.force_login(user)  # signed in at the time of the post: sessions die after idle minutes
    day = plan.days.get(number=number, cancelled=False)
    response = client.post(reverse("plan_record_day", args=[plan.course.patient_id, plan.pk, day.pk]), data, follow=True)
    assert response.status_code == 200
    day.refresh_from_db()
    return html.unescape(response.content.decode()), day


# --- the form --------------------------------------------------------------------------------


def test_no_dose_is_pre_chosen_and_the_evening_waits_for_1600(client, nurse, plan):
    client.force_login(nurse)
    page = client.get(plan_url(plan)).content.decode()
    form = page[page.index('action="' + reverse("plan_record_day", args=[plan.course.patient_id, plan.pk, plan.days.get(number=1).pk])):]
    form = form[:form.index("</form>")]
    assert 'name="morning_taken"' in form and 'name="evening_taken"' in form and form.count('type="radio"') == 4
    assert 'id="m-taken"' in form and 'id="e-missed"' in form
    assert "checked" not in form
    assert 'data-testid="evening-dose" disabled' in form and "recorded from 16:00 (clinic time)" in form
    with at(16):
        client.force_login(nurse)  # the session of 09:00 has idled out: the page would be the sign-in page
        response = client.get(plan_url(plan))
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="evening-dose"' in page
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
        page, day = record(client, nurse, plan, note="nothing answered")
    assert "Say whether the morning and the evening dose was taken or missed." in page
    assert not day.recorded and DesensitizationPlan.objects.get().status == "active"


def test_an_answer_that_is_neither_taken_nor_missed_is_a_message(client, nurse, plan):
    client.force_login(nurse)
    with at(20):
        page, day = record(client, nurse, plan, morning_taken="garbage", evening_taken="taken")
    assert "Day 1 was not recorded. Morning dose: choose taken or missed." in page
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


@pytest.mark.parametrize("grade", ["²", "5", "0", "-1", "2.0", ""])
def test_a_reaction_grade_that_is_not_1_to_4_is_a_message(client, nurse, plan, grade):
    client.force_login(nurse)
    page, day = record(client, nurse, plan, morning_taken="taken", reaction="on", reaction_grade=grade)
    assert "Day 1 was not recorded. Reaction grade (CTCAE):" in page and not day.recorded
    assert ("is not a grade: choose grade 1, 2, 3 or 4." in page if grade
            else "Give the CTCAE grade of the reaction." in page)
    assert DesensitizationPlan.objects.get().status == "active"


def test_a_reaction_needs_its_grade_and_a_grade_needs_the_reaction(client, nurse, plan):
    client.force_login(nurse)
    page, day = record(client, nurse, plan, morning_taken="taken", reaction="on")
    assert "Reaction grade (CTCAE): Give the CTCAE grade of the reaction." in page and not day.recorded
    page, day = record(client, nurse, plan, morning_taken="taken", reaction_grade="2")
    assert "Tick “Reaction” to record a reaction of this grade, or clear the grade." in page and not day.recorded
    assert DesensitizationPlan.objects.get().status == "active"


def test_a_note_longer_than_300_characters_is_a_message(client, nurse, plan):
    client.force_login(nurse)
    page, day = record(client, nurse, plan, morning_taken="taken", reaction="on", reaction_grade="1", note="x" * 301)
    assert "Note: Ensure this value has at most 300 characters (it has 301)." in page and not day.recorded


def _checked(page: str, name: str) -> list[str]:
    """The values of the inputs named `name` that the page renders checked."""
    return [re.search(r'value="([^"]*)"', tag).group(1) for tag in re.findall(rf'<input[^>]*name="{name}"[^>]*>', page)
            if re.search(r"\bchecked\b", tag)]


def test_a_refused_day_comes_back_with_what_was_typed(client, nurse, plan):
    client.force_login(nurse)
    page, day = record(client, nurse, plan, morning_taken="taken", reaction_grade="2", note="felt itchy")
    assert not day.recorded
    assert "felt itchy" in page and _checked(page, "morning_taken") == ["taken"]


def test_a_refused_decision_comes_back_with_what_was_typed(client, nurse, prescriber, plan):
    plan = paused(client, nurse, prescriber, plan)
    client.force_login(prescriber)
    response = client.post(reverse("plan_decide", args=[plan.course.patient_id, plan.pk]),
                           {"decision": "repeat", "reason": "", "version": plan.version})
    page = response.content.decode()
    assert response.status_code == 200 and "The decision was not recorded." in page
    assert _checked(page, "decision") == ["repeat"]


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
        client.post(reverse("plan_decide", args=[plan.course.patient_id, plan.pk]),
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
    # Refused at the field (patients.forms.PlanChoiceForm): no calendar on another date.
    assert "This date is more than a year ahead" in page and 'data-testid="plan-preview"' not in page
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
        page = html.unescape(response.content.decode())
        assert f"This date {problem}" in page and 'id="error_1_id_checkpoint_inhibitor_last_dose"' in page  # at the field
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
    response = client.post(reverse("plan_decide", args=[plan.course.patient_id, plan.pk]),
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


# --- the plan forms refuse what they cannot read (patients.forms) -------------------------------------


def paused(client, nurse, prescriber, plan):
    with at(10):
        record(client, nurse, plan, morning_taken="taken", reaction="on", reaction_grade="1")
    client.force_login(prescriber)
    plan.refresh_from_db()
    return plan


def decide(client, plan, **data):
    response = client.post(reverse("plan_decide", args=[plan.course.patient_id, plan.pk]), data, follow=True)
    assert response.status_code == 200
    plan.refresh_from_db()
    return html.unescape(response.content.decode())


@pytest.mark.parametrize(("data", "message"), [
    ({"decision": "continue", "reason": "Mild"},
     "The decision was not recorded. This page is out of date (it carries no version of the plan): reload it and try "
     "again."),
    ({"decision": "continue", "reason": "Mild", "version": "abc"}, "This page is out of date"),
    ({"decision": "continue", "reason": "Mild", "resume_on": "2026-02-30"},
     "Resume on: Not a date: use the date picker (YYYY-MM-DD)."),
    ({"decision": "continue", "reason": "   "}, "Reason: Give the reason for the decision."),
    ({"decision": "skip_ahead", "reason": "Mild"}, "Decision: Choose one of the decisions listed."),
    ({"reason": "Mild"}, "Decision: Choose a decision."),
])
def test_a_decision_the_form_refuses_is_a_message_and_changes_nothing(client, nurse, prescriber, plan, data, message):
    plan = paused(client, nurse, prescriber, plan)
    data = {"version": plan.version, **data}
    if "carries no version" in message:
        del data["version"]
    page = decide(client, plan, **data)
    assert message in page
    assert plan.status == "paused" and not plan.decisions.exists()


def test_the_decision_form_carries_the_version_and_its_ids(client, nurse, prescriber, plan):
    plan = paused(client, nurse, prescriber, plan)
    page = html.unescape(client.get(plan_url(plan)).content.decode())
    assert f'name="version" value="{plan.version}"' in page
    assert all(f'id="{i}"' in page for i in ("d-continue", "d-stop", "d-reason", "d-resume"))
    decide(client, plan, decision="repeat", reason="Mild; antihistamine", version=plan.version)
    assert plan.status == "active" and plan.decisions.get().decision == "repeat"


@pytest.fixture
def other_protocol(clinic_b, outsider_prescriber):
    from protocols.models import DesensitizationStep

    own = DesensitizationProtocol.objects.create(clinic=clinic_b, name="Clinic B's own", source="clinic",
                                                start_dose="150", final_dose="600", steps_approved_by=outsider_prescriber)
    DesensitizationStep.objects.create(protocol=own, order=1, morning_mg=150, evening_mg=150, days=2)
    DesensitizationStep.objects.create(protocol=own, order=2, morning_mg=600, evening_mg=600, days=2)
    return own


def start_post(client, patient, **data):
    response = client.post(reverse("plan_create", args=[patient.pk]), data, follow=True)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_another_clinics_protocol_is_refused_not_looked_up(client, prescriber, patient, other_protocol):
    client.force_login(prescriber)
    page = preview(client, patient, other_protocol, TODAY.isoformat())
    assert "Choose a protocol from the list: this one is not available to you." in page
    assert 'data-testid="plan-preview"' not in page and "Clinic B's own" not in page
    page = start_post(client, patient, protocol=other_protocol.pk, rash_event=patient.rash.pk,
                      start_date=TODAY.isoformat())
    assert "The plan was not started. Protocol: Choose a protocol from the list" in page
    assert not DesensitizationPlan.objects.exists()
    assert patient.courses.get().dose_state == "withheld"


def test_another_patients_rash_is_refused(client, prescriber, nurse, patient, seegobin, clinic_a):
    other = started_patient(clinic_a, prescriber, days_ago=60)
    rash = clinical_event_record(patient=other, recorded_by=nurse, kind="rash", grade=2,
                                 onset_date=TODAY - timedelta(days=30), resolved_date=TODAY - timedelta(days=5))
    client.force_login(prescriber)
    page = start_post(client, patient, protocol=seegobin.pk, rash_event=rash.pk, start_date=TODAY.isoformat())
    assert "The plan was not started. The rash it follows: Choose one of this patient's recorded rashes." in page
    assert not DesensitizationPlan.objects.exists()


@pytest.mark.parametrize("start", ["2026-02-30", "not-a-date", "20260302x"])
def test_a_start_date_that_is_not_a_date_never_starts_a_plan(client, prescriber, patient, seegobin, start):
    client.force_login(prescriber)
    page = preview(client, patient, seegobin, start)
    assert "Not a date: use the date picker (YYYY-MM-DD)." in page and 'data-testid="plan-preview"' not in page
    page = start_post(client, patient, protocol=seegobin.pk, rash_event=patient.rash.pk, start_date=start)
    assert "The plan was not started. Start date: Not a date: use the date picker (YYYY-MM-DD)." in page
    assert not DesensitizationPlan.objects.exists()


def test_the_first_visit_chooses_the_latest_resolved_rash_and_today(client, prescriber, patient):
    client.force_login(prescriber)
    page = html.unescape(client.get(reverse("plan_create", args=[patient.pk])).content.decode())
    assert f'<option value="{patient.rash.pk}" selected>' in page
    assert f'value="{TODAY.isoformat()}" id="p-start"' in page
    assert 'data-testid="plan-preview"' not in page and "This field is required" not in page


def test_a_last_dose_without_the_prior_inhibitor_ticked_is_refused(client, prescriber, patient, seegobin):
    client.force_login(prescriber)
    page = start_post(client, patient, protocol=seegobin.pk, rash_event=patient.rash.pk, start_date=TODAY.isoformat(),
                      checkpoint_inhibitor_last_dose="2025-12-01")
    assert "Tick “Previously treated with a PD-1/PD-L1 inhibitor”, or clear this date." in page
    assert not DesensitizationPlan.objects.exists()


def test_an_agep_rash_needs_the_written_reason_at_the_field(client, prescriber, patient, seegobin):
    patient.rash.blistering_or_mucosal = True
    patient.rash.save()
    client.force_login(prescriber)
    data = {"protocol": seegobin.pk, "rash_event": patient.rash.pk, "start_date": TODAY.isoformat()}
    page = start_post(client, patient, **data, override_reason="  ")
    assert "Give the reason to go ahead despite AGEP, blistering or mucosal involvement." in page
    assert not DesensitizationPlan.objects.exists()
    start_post(client, patient, **data, override_reason="Minimal mucosal involvement; allergist agrees")
    assert DesensitizationPlan.objects.get().override_reason.startswith("Minimal mucosal")
