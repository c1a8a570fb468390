"""Desensitization plans (reference §9): the library, eligibility, the daily record, pauses,
decisions, completion and failure."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from patients.desensitization import plan_decide, plan_preview, plan_record_day, plan_start, plans_flag_missed
from patients.models import DesensitizationPlan, DoseChangeEvent
from patients.services import clinical_event_record, dose_change_record
from patients.tests.factories import clinic_ranges, started_patient
from protocols.dosing import Dose, DoseState, Reason
from protocols.errors import InputError
from protocols.models import DesensitizationProtocol
from protocols.tests.factories import DesensitizationProtocolFactory

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 2)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.get_current_timezone()), tick=False):
        yield


@pytest.fixture
def seegobin():
    return DesensitizationProtocol.objects.get(clinic__isnull=True, name__startswith="Seegobin")


@pytest.fixture
def patient(clinic_a, prescriber, nurse):
    clinic_ranges(clinic_a)
    p = started_patient(clinic_a, prescriber, days_ago=60)
    course = p.courses.get()
    rash = clinical_event_record(patient=p, recorded_by=nurse, kind="rash", grade=3, rash_bsa_percent=45,
                                 onset_date=TODAY - timedelta(days=40), resolved_date=TODAY - timedelta(days=10))
    dose_change_record(course=course, to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=600),
                       effective_date=TODAY - timedelta(days=40), reason=Reason.TOXICITY, toxicity="Rash",
                       triggering_event=rash, ordered_by=prescriber, recorded_by=prescriber)
    p.rash = rash
    return p


def start(patient, protocol, prescriber, **kw):
    return plan_start(patient=patient, protocol=protocol, rash_event=patient.rash, start=TODAY, user=prescriber, **kw)


def record(plan, day, nurse, **kw):
    # In the evening of the day: the evening dose is recorded only from 16:00 (clinic time).
    evening = datetime.combine(day.date, time(20, 0), tzinfo=ZoneInfo(plan.patient.clinic.timezone))
    values = {"morning_taken": True, "evening_taken": True, "now": evening, **kw}
    return plan_record_day(plan=plan, day=day, user=nurse, today=day.date, **values)


def test_the_library_has_the_published_protocols_and_only_seegobin_can_start(seegobin):
    published = DesensitizationProtocol.objects.filter(clinic__isnull=True)
    assert published.count() == 5
    assert [s.days for s in seegobin.steps.all()] == [2, 5, 8, 8]
    assert seegobin.why_not_startable() == ""
    kimura = published.get(name__startswith="Kimura")
    assert "Only a summary" in kimura.why_not_startable() and "must copy it, enter the steps and approve" in kimura.why_not_startable()
    assert published.get(successful=False).outcome.startswith("Failed")


def test_seegobin_plan_materializes_23_days_and_starts_desensitization(patient, seegobin, prescriber):
    plan = start(patient, seegobin, prescriber)
    days = list(plan.days.order_by("number"))
    assert len(days) == 23 and days[-1].date == TODAY + timedelta(days=22)
    assert (days[15].morning_mg, days[15].evening_mg) == (450, 600)
    assert plan.final_dose_mg_bid == 600
    course = patient.courses.get()
    assert course.dose_state == "desensitization"
    assert DoseChangeEvent.objects.filter(course=course).last().reason == "rechallenge"


def test_steroid_and_prior_checkpoint_inhibitor_are_recorded(client, patient, seegobin, prescriber):
    client.force_login(prescriber)
    response = client.post(reverse("plan_create", args=[patient.pk]), {
        "protocol": seegobin.pk, "rash_event": patient.rash.pk, "start_date": TODAY.isoformat(),
        "corticosteroid": "prednisolone 20 mg daily", "prior_checkpoint_inhibitor": "on",
        "checkpoint_inhibitor_last_dose": "2025-12-01"}, follow=True)
    plan = DesensitizationPlan.objects.get()
    assert plan.corticosteroid == "prednisolone 20 mg daily" and plan.checkpoint_inhibitor_last_dose == date(2025, 12, 1)
    assert "Prior PD-1 blockade" in response.content.decode()


def test_summary_only_protocol_cannot_start(patient, prescriber):
    kimura = DesensitizationProtocol.objects.get(clinic__isnull=True, name__startswith="Kimura")
    with pytest.raises(InputError, match="Only a summary of this report is available"):
        start(patient, kimura, prescriber)
    assert not DesensitizationPlan.objects.exists()


def test_sjs_ten_or_dress_refuses_with_the_contraindication(patient, seegobin, prescriber, nurse):
    clinical_event_record(patient=patient, recorded_by=nurse, kind="rash", grade=3, scar="sjs",
                          onset_date=TODAY - timedelta(days=300), resolved_date=TODAY - timedelta(days=250))
    with pytest.raises(InputError, match=r"contraindicated after Stevens-Johnson syndrome \(SJS\).*§9.3"):
        start(patient, seegobin, prescriber)
    assert patient.courses.get().dose_state == "withheld"


def test_unresolved_rash_refuses_and_agep_needs_a_written_override(patient, seegobin, prescriber, nurse):
    open_rash = clinical_event_record(patient=patient, recorded_by=nurse, kind="rash", grade=2,
                                      onset_date=TODAY - timedelta(days=3))
    with pytest.raises(InputError, match="has not resolved"):
        plan_start(patient=patient, protocol=seegobin, rash_event=open_rash, start=TODAY, user=prescriber)
    patient.rash.blistering_or_mucosal = True
    patient.rash.save()
    with pytest.raises(InputError, match="written reason"):
        start(patient, seegobin, prescriber)
    plan = start(patient, seegobin, prescriber, override_reason="Mucosal involvement minimal; allergist agrees")
    assert plan.override_reason.startswith("Mucosal")


def test_a_dose_the_stocked_capsules_cannot_make_is_flagged_before_approval(patient, prescriber, clinic_a):
    jp = DesensitizationProtocolFactory(clinic=clinic_a, name="40 mg start", start_dose="40", final_dose="300",
                                        steps_approved_by=prescriber, steps=[(40, 0, 1), (300, 300, 3)])
    preview = plan_preview(patient=patient, protocol=jp, start=TODAY, rash_event=patient.rash)
    assert "Step 1 morning dose 40 mg cannot be made from 150 mg capsules (capsules are not opened)." in preview.problems
    clinic_a.capsule_strengths = [20, 40]
    clinic_a.save()
    patient.clinic.refresh_from_db()
    assert not plan_preview(patient=patient, protocol=jp, start=TODAY, rash_event=patient.rash).problems


def test_a_reaction_pauses_and_the_prescriber_repeats_the_step(patient, seegobin, prescriber, nurse):
    plan = start(patient, seegobin, prescriber)
    days = list(plan.days.order_by("number"))
    for d in days[:3]:
        record(plan, d, nurse)
    plan = record(plan, days[3], nurse, reaction=True, reaction_grade=2, note="itchy rash on the arms")
    assert plan.status == "paused" and "Reaction (grade 2) on day 4, step 2" in plan.pause_reason
    with pytest.raises(InputError, match="paused or finished"):
        record(plan, days[4], nurse)
    plan_decide(plan=plan, decision="repeat", reason="Mild; antihistamine", user=prescriber, resume_on=days[3].date + timedelta(days=1),
                today=days[3].date)
    plan.refresh_from_db()
    live = list(plan.days.filter(cancelled=False).order_by("number"))
    assert plan.status == "active"
    assert [(d.number, d.step, d.morning_mg) for d in live[4:6]] == [(5, 2, 300), (6, 2, 300)]
    assert len(live) == 4 + 5 + 8 + 8  # step 2 again in full, then steps 3 and 4


def test_a_missed_dose_pauses_with_the_tolerance_warning(patient, seegobin, prescriber, nurse):
    plan = start(patient, seegobin, prescriber)
    day1 = plan.days.order_by("number").first()
    plan = record(plan, day1, nurse, evening_taken=False)
    assert plan.status == "paused" and "Tolerance is temporary" in plan.pause_reason
    plan_decide(plan=plan, decision="restart", reason="Restart from step 1", user=prescriber, today=TODAY)
    plan.refresh_from_db()
    assert plan.days.filter(cancelled=False, recorded_at__isnull=True).order_by("number").first().step == 1


def test_the_monitoring_job_flags_a_missed_day(patient, seegobin, prescriber):
    plan = start(patient, seegobin, prescriber)
    assert plans_flag_missed(today=TODAY) == 0
    assert plans_flag_missed(today=TODAY + timedelta(days=1)) == 1
    plan.refresh_from_db()
    assert plan.status == "paused" and "was not recorded" in plan.pause_reason
    assert plans_flag_missed(today=TODAY + timedelta(days=2)) == 0  # once


def test_completing_the_plan_moves_the_dose_to_600_through_a_dose_change(patient, seegobin, prescriber, nurse):
    plan = start(patient, seegobin, prescriber)
    for d in plan.days.order_by("number"):
        plan = record(plan, d, nurse)
    assert plan.status == "completed"
    course = patient.courses.get()
    assert (course.dose_state, course.dose_mg_bid) == ("on_drug", 600)
    last = DoseChangeEvent.objects.filter(course=course).last()
    assert (last.from_state, last.to_state, last.reason) == ("desensitization", "on_drug", "rechallenge")
    assert last.effective_date == TODAY + timedelta(days=23)  # day 24: maintenance


def test_a_failed_plan_records_the_outcome_and_suggests_another_alk_inhibitor(patient, seegobin, prescriber, nurse):
    plan = start(patient, seegobin, prescriber)
    plan = record(plan, plan.days.order_by("number").first(), nurse, reaction=True, reaction_grade=3)
    plan_decide(plan=plan, decision="stop", reason="Grade 3 rash again", user=prescriber, today=TODAY)
    plan.refresh_from_db()
    assert plan.status == "failed" and "brigatinib, lorlatinib" in plan.outcome and "information only" in plan.outcome
    assert patient.courses.get().dose_state == "withheld"


def test_clinic_copy_is_versioned_and_a_plan_keeps_its_version(client, patient, seegobin, prescriber, clinic_admin):
    client.force_login(clinic_admin)
    response = client.post(reverse("protocol_copy", args=[seegobin.pk]))
    copy = DesensitizationProtocol.objects.get(clinic__isnull=False)
    assert response["Location"] == reverse("protocol_edit", args=[copy.pk])
    assert "approve" in copy.why_not_startable()
    client.force_login(prescriber)
    client.post(reverse("protocol_approve", args=[copy.pk]))
    copy.refresh_from_db()
    plan = start(patient, copy, prescriber)
    data = {"name": "Slower", "source": "clinic", "start_dose": "150", "final_dose": "600", "setting": "outpatient",
            "steps-TOTAL_FORMS": "2", "steps-INITIAL_FORMS": "0",
            "steps-0-morning_mg": "150", "steps-0-evening_mg": "150", "steps-0-days": "4",
            "steps-1-morning_mg": "600", "steps-1-evening_mg": "600", "steps-1-days": "1"}
    client.post(reverse("protocol_edit", args=[copy.pk]), data)
    v2 = DesensitizationProtocol.objects.get(supersedes=copy)
    assert v2.version == 2 and v2.steps_approved_by is None and [s.days for s in v2.steps.all()] == [4, 1]
    plan.refresh_from_db()
    assert plan.protocol_id == copy.pk and plan.days.count() == 23


def test_published_protocols_are_read_only_and_shown_side_by_side(client, nurse, seegobin):
    client.force_login(nurse)
    body = client.get(reverse("protocol_list")).content.decode()
    for name in ("Seegobin", "Shirasawa", "Kimura", "Anderson", "Unsuccessful case"):
        assert name in body
    assert "Concurrent prednisolone" in body and "failed" in body
    assert client.get(reverse("protocol_edit", args=[seegobin.pk])).status_code == 404
    assert client.post(reverse("protocol_copy", args=[seegobin.pk])).status_code == 403  # nurses do not edit protocols


def test_worklist_shows_todays_step(client, patient, seegobin, prescriber, nurse):
    start(patient, seegobin, prescriber)
    client.force_login(nurse)
    body = client.get("/").content.decode()
    assert "Desensitization plans in progress" in body and "day 1, step 1 of 4: 150 mg morning, 150 mg evening" in body
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "Desensitization, step 1 of 4" in page


def test_a_stale_plan_decision_is_refused_and_changes_nothing(client, patient, seegobin, prescriber, nurse):
    """Issue #12 item 4: the decision form carries the plan version it was read at."""
    plan = start(patient, seegobin, prescriber)
    plan = record(plan, plan.days.order_by("number").first(), nurse, reaction=True, reaction_grade=2, note="rash")
    read_at = plan.version
    client.force_login(prescriber)
    page = client.get(reverse("plan_detail", args=[patient.pk, plan.pk])).content.decode()
    assert f'name="version" value="{read_at}"' in page
    plan.pause_reason += " (seen by the dermatologist)"
    plan.save()  # another session changed the plan meanwhile
    response = client.post(reverse("plan_decide", args=[patient.pk, plan.pk]),
                           {"decision": "repeat", "reason": "mild rash, settled", "version": read_at}, follow=True)
    assert "changed by someone else" in response.content.decode()
    plan.refresh_from_db()
    assert plan.status == "paused" and not plan.decisions.exists()
