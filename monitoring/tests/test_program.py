"""Issue #16: the oral therapy program through its services, on the record: each check-in
finding reaches its rule (reference §8.7 last paragraph, §4), the supply follows the dose,
check-ins are due on the clinic's schedule, the worklist and the digest show what needs
doing, and bad input changes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from monitoring import program, rules
from monitoring.models import MonitoringItem, RequirementVersion
from monitoring.program import CheckInEntry
from monitoring.services import digest_content, patient_schedule_recompute
from patients.models import CheckIn, ClinicalEvent, ConcomitantMedication, ProgramStatus, Recommendation
from patients.services import dose_change_record
from patients.tests.factories import clinic_ranges, started_patient
from protocols.dosing import Dose, DoseState, Reason
from protocols.errors import InputError

pytestmark = pytest.mark.django_db


@pytest.fixture
def check_ins_from_the_start():
    """The default check-in schedule takes effect on the day its migration runs; these
    tests start courses in the past, so it applies from long before."""
    RequirementVersion.objects.filter(requirement__code=rules.CHECK_IN, requirement__clinic__isnull=True) \
        .update(effective_from=date(2000, 1, 1))


@pytest.fixture
def patient(clinic_a, prescriber, check_ins_from_the_start):
    clinic_ranges(clinic_a)
    p = started_patient(clinic_a, prescriber, days_ago=10)
    patient_schedule_recompute(patient_id=p.pk)
    return p


def course(p):
    return p.courses.get()


def today():
    return timezone.localdate()


def entry(**kw):
    return CheckInEntry(done_on=kw.pop("done_on", today()), mode=kw.pop("mode", "phone"), **kw)


def record(p, nurse, **kw):
    check_in = program.check_in_record(course=course(p), user=nurse, entry=entry(**kw))
    patient_schedule_recompute(patient_id=p.pk)  # on_commit hooks do not run in these tests
    return check_in


# --- symptom → rule, one path each (reference §8.7, §4) -----------------------------------------

def test_muscle_pain_makes_a_cpk_due_now(patient, nurse):
    # Day 10: the first-month CPK is due on day 14; muscle pain brings it to today (§4.5, §5).
    record(patient, nurse, symptoms={"myalgia": 1})
    item = MonitoringItem.objects.get(course__patient=patient, requirement__code="cpk")
    assert item.due_date == today()
    assert "muscle pain" in item.notice and "§4.5" in item.notice


def test_muscle_pain_after_the_first_month_still_makes_a_cpk_due(clinic_a, prescriber, nurse, check_ins_from_the_start):
    clinic_ranges(clinic_a)
    p = started_patient(clinic_a, prescriber, days_ago=90)
    patient_schedule_recompute(patient_id=p.pk)
    assert MonitoringItem.objects.get(course__patient=p, requirement__code="cpk").due_date is None
    record(p, nurse, symptoms={"myalgia": 2})
    assert MonitoringItem.objects.get(course__patient=p, requirement__code="cpk").due_date == today()


def test_new_or_worse_breathlessness_asks_a_prescriber_to_investigate_for_ild(patient, nurse):
    done = record(patient, nurse, symptoms={"dyspnea": 2}, respiratory_new_or_worse=True)
    event = ClinicalEvent.objects.get(patient=patient, kind="respiratory")
    assert done.findings[0]["route"] == "ild_review" and done.findings[0]["events"] == [event.pk]
    rec = Recommendation.objects.get(course__patient=patient, status="pending")
    assert [r["id"] for r in rec.output["rules"]] == ["ILD-SYMPTOMS"]
    assert rec.action == "review" and rec.triggering_event == event
    assert course(patient).dose_state == DoseState.ON_DRUG, "the app never changes a dose on its own"


def test_a_stable_cough_is_recorded_without_an_investigation(patient, nurse):
    done = record(patient, nurse, symptoms={"cough": 1})
    assert done.findings == [] and not ClinicalEvent.objects.filter(patient=patient).exists()


def test_dizziness_with_a_slow_heart_records_a_symptomatic_bradycardia(patient, nurse):
    record(patient, nurse, symptoms={"dizziness": 2}, heart_rate=52)
    event = ClinicalEvent.objects.get(patient=patient, kind="bradycardia")
    assert event.bradycardia == "symptomatic" and event.grade is None, "the clinician grades it (§8.5)"
    rec = Recommendation.objects.get(course__patient=patient, status="pending")
    assert [r["id"] for r in rec.output["rules"]] == ["B2"]


@pytest.mark.parametrize(("hr", "events"), [(60, []), (None, [])])
def test_dizziness_without_a_slow_heart_records_no_bradycardia(patient, nurse, hr, events):
    done = record(patient, nurse, symptoms={"dizziness": 1}, heart_rate=hr)
    assert list(ClinicalEvent.objects.filter(patient=patient).values_list("kind", flat=True)) == events
    assert [f["route"] for f in done.findings] == ([] if hr else ["heart_rate_needed"])


def test_a_grade_3_rash_goes_to_a_prescriber(patient, nurse):
    record(patient, nurse, symptoms={"rash": 3})
    event = ClinicalEvent.objects.get(patient=patient, kind="rash")
    assert event.grade == 3
    rec = Recommendation.objects.get(course__patient=patient, status="pending")
    assert [r["id"] for r in rec.output["rules"]] == ["UNLISTED"]


def test_other_grade_3_symptoms_go_to_a_prescriber_without_a_label_rule(patient, nurse):
    record(patient, nurse, symptoms={"fatigue": 3, "nausea": 2})
    (event,) = ClinicalEvent.objects.filter(patient=patient)
    assert (event.kind, event.grade, event.notes.splitlines()[0]) == ("other", 3, "Fatigue")
    assert Recommendation.objects.get(course__patient=patient, status="pending").action == "review"


def test_a_new_heart_slowing_medicine_joins_the_course(patient, nurse):
    done = record(patient, nurse, new_medicine="Bisoprolol 2.5 mg", new_medicine_category="beta_blocker")
    med = ConcomitantMedication.objects.get(course__patient=patient)
    assert (med.name, med.category, med.start_date) == ("Bisoprolol 2.5 mg", "beta_blocker", today())
    assert done.findings[-1]["route"] == "medicine"


@pytest.mark.parametrize(("kw", "message"), [
    ({"symptoms": {"rash": 4}}, "has grade 1, 2, 3"),
    ({"symptoms": {"dysgeusia": 3}}, "has grade 1, 2"),
    ({"symptoms": {"itch": 1}}, "Unknown symptom"),
    ({"respiratory_new_or_worse": True}, "grade the dyspnea or the cough"),
    ({"heart_rate": 300}, "20 to 250"),
    ({"new_medicine": "Verapamil"}, "which kind"),
    ({"missed_doses": 2}, "Say why"),
    ({"mode": "email"}, "phone or a visit"),
    ({"done_on": "future"}, "future"),
])
def test_bad_check_in_input_is_refused_and_changes_nothing(patient, nurse, kw, message):
    if kw.get("done_on") == "future":
        kw["done_on"] = today() + timedelta(days=1)
    with pytest.raises(InputError, match=message):
        record(patient, nurse, **kw)
    assert not CheckIn.objects.exists() and not ClinicalEvent.objects.exists()


# --- the check-in schedule on the worklist --------------------------------------------------------

def test_check_ins_are_due_on_day_7_and_14_then_every_4_weeks(clinic_a, prescriber, nurse, check_ins_from_the_start):
    p = started_patient(clinic_a, prescriber, days_ago=20)
    patient_schedule_recompute(patient_id=p.pk)
    item = MonitoringItem.objects.get(course__patient=p, requirement__code=rules.CHECK_IN)
    start = course(p).start_date
    assert item.due_date == start + timedelta(days=7)
    assert item.overdue_from <= today(), "no check-in by day 7: overdue, on the worklist"
    late = record(p, nurse, done_on=start + timedelta(days=8))
    assert (late.due_on, late.on_time) == (start + timedelta(days=7), False)
    item.refresh_from_db()
    assert item.due_date == start + timedelta(days=8 + 28)
    assert item.overdue_from > today()


# --- supply -------------------------------------------------------------------------------------

def test_the_supply_follows_a_dose_change(patient, nurse, prescriber):
    c = course(patient)
    program.prescription_record(course=c, user=nurse, written_on=c.start_date, capsules=112)
    program.dispensing_record(course=c, user=nurse, dispensed_on=c.start_date, capsules=112)
    patient_schedule_recompute(patient_id=patient.pk)
    status = ProgramStatus.objects.get(course=c)
    # 112 capsules at 8 a day from day 0: days 0-13 covered, day 14 short.
    assert (status.runs_out_on, status.unfilled_since) == (c.start_date + timedelta(days=14), None)
    assert status.on_hand == 112 - 8 * 11
    dose_change_record(course=c, to=Dose(DoseState.ON_DRUG, 450), effective_date=today(), reason=Reason.PRESCRIBER_CHOICE,
                       ordered_by=prescriber, recorded_by=prescriber)
    patient_schedule_recompute(patient_id=patient.pk)
    status.refresh_from_db()
    # Days 0-9 at 8 a day (80), from today (day 10) 6 a day: 32 capsules last days 10-14, day 15 short.
    assert status.runs_out_on == c.start_date + timedelta(days=15)


def test_a_prescription_without_a_fill_is_chased_after_the_clinics_days(patient, nurse):
    c = course(patient)
    program.prescription_record(course=c, user=nurse, written_on=today() - timedelta(days=7), capsules=224)
    patient_schedule_recompute(patient_id=patient.pk)
    status = ProgramStatus.objects.get(course=c)
    assert status.unfilled_since == today() - timedelta(days=7)
    flagged = program.supply_flags(ProgramStatus.objects.all(), {patient.clinic_id: today()}, {patient.clinic_id: 7})
    assert list(flagged) == [status]
    assert not program.supply_flags(ProgramStatus.objects.all(), {patient.clinic_id: today()}, {patient.clinic_id: 8})


def test_a_withdrawn_dispensing_no_longer_counts(patient, nurse):
    c = course(patient)
    d = program.dispensing_record(course=c, user=nurse, dispensed_on=c.start_date, capsules=2000)
    program.supply_void(record=d, user=nurse, reason="typed 2000 for 200")
    patient_schedule_recompute(patient_id=patient.pk)
    assert ProgramStatus.objects.get(course=c).on_hand is None, "no dispensing counts: no supply"
    with pytest.raises(InputError, match="already"):
        program.supply_void(record=d, user=nurse, reason="again")


@pytest.mark.parametrize(("capsules", "strength"), [(0, 150), (2001, 150), (10, 100)])
def test_impossible_supply_records_are_refused(patient, nurse, capsules, strength):
    with pytest.raises(InputError):
        program.dispensing_record(course=course(patient), user=nurse, dispensed_on=today(), capsules=capsules,
                                  strength_mg=strength)


# --- education ------------------------------------------------------------------------------------

def test_education_is_a_complete_checklist(patient, nurse, settings):
    settings.ORAL_PROGRAM_FROM = "2000-01-01"
    c = course(patient)
    patient_schedule_recompute(patient_id=patient.pk)
    assert [s.course for s in program.education_missing(ProgramStatus.objects.all())] == [c]
    with pytest.raises(InputError, match="not ticked: Storage"):
        program.education_record(course=c, user=nurse, given_on=today(),
                                 topics=["dose", "food", "whole", "missed", "vomited", "sun", "contraception", "report"])
    topics = [t.code for t in program.education_topics(c)]
    program.education_record(course=c, user=nurse, given_on=today(), topics=topics)
    patient_schedule_recompute(patient_id=patient.pk)
    assert not program.education_missing(ProgramStatus.objects.all()).exists()
    assert program.education_state(c)["last"].dose_mg_bid == 600


def test_a_dose_change_asks_for_the_education_again(patient, nurse, prescriber, settings):
    settings.ORAL_PROGRAM_FROM = "2000-01-01"
    c = course(patient)
    program.education_record(course=c, user=nurse, given_on=today(), topics=[t.code for t in program.education_topics(c)])
    dose_change_record(course=c, to=Dose(DoseState.ON_DRUG, 450), effective_date=today(), reason=Reason.PRESCRIBER_CHOICE,
                       ordered_by=prescriber, recorded_by=prescriber)
    c.refresh_from_db()
    patient_schedule_recompute(patient_id=patient.pk)
    (row,) = program.education_missing(ProgramStatus.objects.all())
    assert (row.education, row.taught_dose_mg_bid, row.course.dose_mg_bid) == ("dose_changed", 600, 450)
    assert program.education_state(c)["stale"] is True


def test_courses_taught_on_paper_before_the_program_are_not_flagged(patient, settings):
    settings.ORAL_PROGRAM_FROM = (today() + timedelta(days=1)).isoformat()
    patient_schedule_recompute(patient_id=patient.pk)
    assert not program.education_missing(ProgramStatus.objects.all()).exists()


# --- the worklist and the digest ---------------------------------------------------------------------

def test_the_worklist_and_the_digest_show_supply_and_education(client, patient, nurse, settings):
    settings.ORAL_PROGRAM_FROM = "2000-01-01"
    c = course(patient)
    program.prescription_record(course=c, user=nurse, written_on=today() - timedelta(days=9), capsules=224)
    patient_schedule_recompute(patient_id=patient.pk)
    client.force_login(nurse)
    page = client.get("/").content.decode()
    assert 'data-testid="count-supply">1<' in page and "no fill 9 days after the prescription" in page
    assert 'data-testid="count-education">1<' in page and "no education recorded" in page
    content = digest_content(clinic=patient.clinic, today=today())
    assert (content.supply, content.education) == (1, 1)
    csv = b"".join(client.get("/?export=csv").streaming_content).decode()
    assert "supply," in csv and "education," in csv


def test_adherence_counts_covered_days_and_reported_misses(patient, nurse):
    c = course(patient)
    program.dispensing_record(course=c, user=nurse, dispensed_on=c.start_date, capsules=40)  # 5 days at 8 a day
    record(patient, nurse, missed_doses=4, missed_reason="ran out")
    a = program.page_facts(c, today()).adherence
    assert (a["days_needed"], a["days_covered"], a["pdc"]) == (11, 5, 45.5)
    assert a["points"][0]["missed"] == 4 and a["points"][0]["percent"] == 18.2  # of the 22 doses of days 0-10


# --- the pages ----------------------------------------------------------------------------------------

def test_the_pages_record_and_refuse_through_the_forms(client, patient, nurse):
    client.force_login(nurse)
    base = f"/monitoring/patients/{patient.pk}/program/"
    assert client.get(base).status_code == 200
    # A check-in form with a grade the term does not have: refused, with the reason, nothing saved.
    bad = {"done_on": today().isoformat(), "mode": "phone", "missed_doses": "0", "vomited_doses": "0", "symptom_rash": "4"}
    response = client.post(base + "check-ins/new/", bad)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not CheckIn.objects.exists()
    good = {**bad, "symptom_rash": "3", "plan": "Photos sent to the prescriber."}
    response = client.post(base + "check-ins/new/", good)
    assert response.status_code == 302
    rash = ClinicalEvent.objects.get(patient=patient, kind="rash")
    page = client.get(base).content.decode()
    assert "the desensitization pathway is offered once it has resolved" in page
    # Resolving it (from the program page) offers the pathway.
    response = client.post(f"/patients/{patient.pk}/events/{rash.pk}/resolve/",
                           {"resolved_date": today().isoformat(), "next": base})
    assert response.status_code == 302 and response["Location"] == base
    rash.refresh_from_db()
    assert rash.resolved_date == today()
    assert "a desensitization re-challenge can be considered" in client.get(base).content.decode()
    again = client.post(f"/patients/{patient.pk}/events/{rash.pk}/resolve/", {"resolved_date": today().isoformat()},
                        follow=True)
    assert "already resolved" in again.content.decode()


def test_a_dispensing_form_refuses_a_future_date_and_an_odd_strength(client, patient, nurse):
    client.force_login(nurse)
    url = f"/monitoring/patients/{patient.pk}/program/dispensings/new/"
    for data in ({"dispensed_on": (today() + timedelta(days=2)).isoformat(), "capsules": "112", "strength_mg": "150"},
                 {"dispensed_on": today().isoformat(), "capsules": "112", "strength_mg": "100"},
                 {"dispensed_on": today().isoformat(), "capsules": "0", "strength_mg": "150"}):
        response = client.post(url, data)
        assert response.status_code == 200
    assert not course(patient).dispensings.exists()
    assert client.post(url, {"dispensed_on": today().isoformat(), "capsules": "112", "strength_mg": "150"}).status_code == 302


def test_the_handout_carries_the_dose_now_and_the_clinics_number(client, patient, nurse, prescriber):
    from monitoring.models import ClinicSettings

    ClinicSettings.objects.update_or_create(clinic=patient.clinic, defaults={"patient_phone": "+44 20 7946 0018"})
    dose_change_record(course=course(patient), to=Dose(DoseState.ON_DRUG, 300), effective_date=today(),
                       reason=Reason.PRESCRIBER_CHOICE, ordered_by=prescriber, recorded_by=prescriber)
    client.force_login(nurse)
    page = client.get(f"/monitoring/patients/{patient.pk}/program/handout/").content.decode()
    assert "300 mg twice a day: 2 capsules of 150 mg each time." in page and "+44 20 7946 0018" in page
    assert "skip it" in page  # the US missed-dose rule (reference §2)


def test_the_audit_trail_shows_every_program_record(patient, nurse):
    from patients.trail import patient_trail

    c = course(patient)
    program.education_record(course=c, user=nurse, given_on=today(), topics=[t.code for t in program.education_topics(c)])
    program.prescription_record(course=c, user=nurse, written_on=today(), capsules=224)
    d = program.dispensing_record(course=c, user=nurse, dispensed_on=today(), capsules=224)
    program.supply_void(record=d, user=nurse, reason="wrong patient")
    record(patient, nurse, symptoms={"myalgia": 1})
    trail = patient_trail(patient, reads=False)
    what = [(r["what"], r["type"]) for r in trail]
    for row in [("Education", "added"), ("Prescription", "added"), ("Dispensing", "added"), ("Dispensing", "changed"),
                ("Check-in", "added")]:
        assert row in what
    withdrawn = next(r for r in trail if r["what"] == "Dispensing" and r["type"] == "changed")
    assert ("Void reason", "—", "wrong patient") in withdrawn["changes"]


# --- fresh-eyes round 1 -----------------------------------------------------------------------------

def test_the_heart_rate_of_a_check_in_is_a_result(patient, nurse):
    from patients.models import LabResult

    record(patient, nurse, symptoms={"dizziness": 1}, heart_rate=50)
    hr = LabResult.objects.get(patient=patient, analyte="heart_rate")
    assert hr.value == 50 and hr.collected_at.date() <= today()


def test_dizziness_without_a_heart_rate_makes_the_vitals_due(patient, nurse, clinic_a, clinic_admin):
    from monitoring.models import Requirement

    record(patient, nurse, symptoms={"dizziness": 2})
    item = MonitoringItem.objects.get(course__patient=patient, requirement=Requirement.objects.get(code="vitals"))
    assert item.due_date == today() and "§4.4" in item.notice


def test_a_check_in_stops_a_heart_slowing_medicine(patient, nurse):
    med = ConcomitantMedication.objects.create(course=course(patient), name="Bisoprolol 2.5 mg", category="beta_blocker",
                                               start_date=course(patient).start_date)
    done = record(patient, nurse, stop_medicine_ids=(med.pk,))
    med.refresh_from_db()
    assert med.end_date == today() and done.findings[-1]["route"] == "medicine_stopped"
    with pytest.raises(InputError, match="still taken"):
        record(patient, nurse, stop_medicine_ids=(med.pk,))


@pytest.mark.parametrize(("kw", "message"), [
    ({"new_medicine_category": "beta_blocker"}, "Name the new"),
    ({"missed_doses": 23, "missed_reason": "ran out"}, "only 22 were due since the first dose"),
])
def test_more_check_in_input_that_cannot_be_right(patient, nurse, kw, message):
    with pytest.raises(InputError, match=message):
        record(patient, nurse, **kw)
    assert not CheckIn.objects.exists()


def test_japanese_capsule_strengths_only_under_a_japanese_regime(patient, nurse):
    with pytest.raises(InputError, match="exist only in Japan"):
        program.dispensing_record(course=course(patient), user=nurse, dispensed_on=today(), capsules=50, strength_mg=40)


def test_a_patient_who_ran_out_is_flagged_as_out_since_that_day(patient, nurse, client):
    c = course(patient)
    program.dispensing_record(course=c, user=nurse, dispensed_on=c.start_date, capsules=40)  # days 0-4
    patient_schedule_recompute(patient_id=patient.pk)
    status = ProgramStatus.objects.get(course=c)
    assert status.runs_out_on == c.start_date + timedelta(days=5) < today()
    client.force_login(nurse)
    assert "ran out" in client.get("/").content.decode()
    page = client.get(f"/monitoring/patients/{patient.pk}/program/").content.decode()
    assert "Ran out on" in page and "6 days without capsules" in page


def test_check_ins_due_and_not_done_count_against_the_share_on_time(patient, nurse, clinic_a):
    from monitoring.cohort import overview

    # Started 10 days ago: the day-7 check-in is overdue and not done.
    summary = overview(user=nurse, today=today())["program"]
    assert (summary["check_ins_due"], summary["check_ins_on_time"], summary["check_ins_missed"]) == (1, 0, 1)
    assert summary["check_ins_share"] == 0


# --- fresh-eyes round 2 -----------------------------------------------------------------------------

def test_a_bradycardia_with_a_medicine_stopped_at_the_check_in_offers_the_same_dose(patient, nurse):
    med = ConcomitantMedication.objects.create(course=course(patient), name="Diltiazem", category="ccb",
                                               start_date=course(patient).start_date)
    record(patient, nurse, symptoms={"dizziness": 2}, heart_rate=48, stop_medicine_ids=(med.pk,))
    event = ClinicalEvent.objects.get(patient=patient, kind="bradycardia")
    assert (event.contributing_medication, event.contributing_medication_adjusted) == (True, True)
    assert "stopped at this check-in: Diltiazem" in event.notes
    rec = Recommendation.objects.get(course__patient=patient, status="pending")
    assert [r["id"] for r in rec.output["rules"]] == ["B1"]  # same dose, the reduced one offered too (A1)


def test_a_bradycardia_with_a_medicine_still_taken_is_b2(patient, nurse):
    ConcomitantMedication.objects.create(course=course(patient), name="Bisoprolol", category="beta_blocker",
                                         start_date=course(patient).start_date)
    record(patient, nurse, symptoms={"syncope": 3}, heart_rate=44)
    event = ClinicalEvent.objects.get(patient=patient, kind="bradycardia")
    assert (event.contributing_medication, event.contributing_medication_adjusted) == (True, False)
    assert [r["id"] for r in Recommendation.objects.get(course__patient=patient, status="pending").output["rules"]] == ["B2"]


def test_missed_doses_are_counted_against_the_days_on_drug_only(patient, nurse, prescriber):
    c = course(patient)
    dose_change_record(course=c, to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=600), effective_date=today() - timedelta(days=4),
                       reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    # Days 0-5 on drug (12 doses), days 6-10 withheld.
    with pytest.raises(InputError, match="only 12 were due"):
        record(patient, nurse, missed_doses=13, missed_reason="unsure")


def test_the_dose_taught_is_the_dose_of_the_day_the_education_was_given(patient, nurse, prescriber):
    c = course(patient)
    dose_change_record(course=c, to=Dose(DoseState.ON_DRUG, 450), effective_date=today(), reason=Reason.PRESCRIBER_CHOICE,
                       ordered_by=prescriber, recorded_by=prescriber)
    c.refresh_from_db()
    done = program.education_record(course=c, user=nurse, given_on=c.start_date,
                                    topics=[t.code for t in program.education_topics(c)])
    assert done.dose_mg_bid == 600


def test_after_a_desensitization_plan_its_final_dose_continues():
    from patients.tests.factories import DesensitizationPlanFactory

    plan = DesensitizationPlanFactory()
    last = plan.days.order_by("-date").first()
    periods = program.dose_periods(plan.course)
    assert periods[-1].start == last.date + timedelta(days=1)
    assert (periods[-1].morning_mg, periods[-1].evening_mg) == (plan.final_dose_mg_bid, plan.final_dose_mg_bid)


def test_education_before_the_first_dose_teaches_the_starting_dose(clinic_a, prescriber, nurse, check_ins_from_the_start):
    from patients.services import course_start
    from patients.tests.factories import PatientFactory

    p = PatientFactory(clinic=clinic_a)
    c = course_start(patient=p, start_date=today() + timedelta(days=3), ordered_by=prescriber, recorded_by=prescriber)
    done = program.education_record(course=c, user=nurse, given_on=today(),
                                    topics=[t.code for t in program.education_topics(c)])
    assert done.dose_mg_bid == 600
    assert program.education_needed(c)[0] == ""


def test_during_desensitization_the_handout_teaches_todays_step(client, clinic_a, nurse, prescriber, check_ins_from_the_start):
    from patients.desensitization import plan_start
    from patients.models import DesensitizationPlan
    from patients.services import clinical_event_record
    from protocols.tests.factories import DesensitizationProtocolFactory

    clinic_ranges(clinic_a)
    p = started_patient(clinic_a, prescriber, days_ago=40)
    rash = clinical_event_record(patient=p, recorded_by=nurse, kind="rash", grade=3, rash_bsa_percent=40,
                                 onset_date=today() - timedelta(days=20), resolved_date=today() - timedelta(days=2))
    dose_change_record(course=course(p), to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=600), reason=Reason.TOXICITY,
                       effective_date=today() - timedelta(days=20), ordered_by=prescriber, recorded_by=prescriber)
    protocol = DesensitizationProtocolFactory(clinic=clinic_a, name="A's own", start_dose="150", final_dose="600",
                                              steps_approved_by=prescriber, steps=[(150, 300, 2), (600, 600, 1)])
    plan = plan_start(patient=p, protocol=protocol, rash_event=rash, start=today(), user=prescriber)
    assert DesensitizationPlan.objects.get(pk=plan.pk).course.dose_state == DoseState.DESENSITIZATION
    client.force_login(nurse)
    page = client.get(f"/monitoring/patients/{p.pk}/program/handout/").content.decode()
    assert "Desensitization: today 150 mg (1 capsule) in the morning and 300 mg (2 capsules) in the evening." in page
    assert "call the clinic before the next dose" in page and "No dose at the moment" not in page
    assert "today's desensitization step (150 mg morning, 300 mg evening)" in page
    assert client.get(f"/monitoring/patients/{p.pk}/program/").status_code == 200
