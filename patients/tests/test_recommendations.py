"""The recommendation workflow: saving results runs the engine; a prescriber accepts
(dose change in the same transaction) or overrides with a reason; nurses comment only."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import ClinicalEvent, DoseChangeEvent, Recommendation
from patients.recommendations import build_case, recommendation_accept, recommendation_override
from patients.services import LabEntry, clinical_event_record, lab_panel_record
from patients.tests.factories import clinic_ranges, started_patient
from protocols.errors import InputError

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber, days_ago=40)


def alt(patient, user, value, hours_ago=1, **more):
    entries = [LabEntry("alt", str(value))] + [LabEntry(k, str(v)) for k, v in more.items()]
    return lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(hours=hours_ago),
                            entries=entries, entered_by=user)


def test_normal_results_create_no_recommendation(patient, nurse):
    alt(patient, nurse, 35, total_bilirubin="0.8")
    assert not Recommendation.objects.exists()


def test_alt_over_5x_creates_a_pending_withhold_and_nothing_changes_the_dose(patient, nurse):
    alt(patient, nurse, 250, total_bilirubin="0.8")
    rec = Recommendation.objects.get()
    assert rec.status == "pending" and rec.action == "withhold"
    assert rec.output["resume_dose_mg_bid"] == 450 and rec.triggering_lab.analyte == "alt"
    course = patient.courses.get()
    assert (course.dose_state, course.dose_mg_bid) == ("on_drug", 600)


def test_the_same_results_do_not_create_a_second_recommendation(patient, nurse, prescriber):
    alt(patient, nurse, 250)
    rec = Recommendation.objects.get()
    recommendation_override(recommendation=rec, user=prescriber, reason="Lab error suspected; repeat tomorrow")
    lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(minutes=5),
                     entries=[LabEntry("heart_rate", "72")], entered_by=nurse)
    assert Recommendation.objects.count() == 1


def test_accepting_records_the_dose_change_in_one_step_and_links_it(patient, nurse, prescriber):
    alt(patient, nurse, 250)
    rec = Recommendation.objects.get()
    event = recommendation_accept(recommendation=rec, user=prescriber)
    rec.refresh_from_db()
    course = patient.courses.get()
    assert rec.status == "accepted" and rec.decided_by == prescriber and rec.dose_event == event
    assert (course.dose_state, course.resume_dose_mg_bid) == ("withheld", 450)
    assert course.recovery_condition[0]["analyte"] == "alt"
    assert event.ordered_by == prescriber and event.toxicity.startswith("Hepatotoxicity") and event.toxicity_grade == 3
    with pytest.raises(InputError, match="already accepted"):
        recommendation_accept(recommendation=rec, user=prescriber)
    assert DoseChangeEvent.objects.filter(course=course).count() == 2


def test_recovery_while_withheld_suggests_resuming_at_the_reduced_dose(patient, nurse, prescriber):
    alt(patient, nurse, 250, hours_ago=30)
    recommendation_accept(recommendation=Recommendation.objects.get(), user=prescriber)
    alt(patient, nurse, 150, hours_ago=20)  # 3.75x: still held, nothing new to decide
    assert not Recommendation.objects.filter(status="pending").exists()
    alt(patient, nurse, 80)  # 2x ULN: recovered
    rec = Recommendation.objects.get(status="pending")
    assert rec.action == "resume" and rec.output["resume_dose_mg_bid"] == 450
    recommendation_accept(recommendation=rec, user=prescriber)
    course = patient.courses.get()
    assert (course.dose_state, course.dose_mg_bid) == ("on_drug", 450)
    assert [(e.from_state, e.to_state, e.to_dose_mg_bid) for e in course.dose_events.all()] == [
        ("not_started", "on_drug", 600), ("on_drug", "withheld", None), ("withheld", "on_drug", 450)]


def test_second_cpk_episode_counts_as_c2(patient, nurse, prescriber):
    lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(days=10), entries=[LabEntry("cpk", "900")], entered_by=nurse)
    recommendation_accept(recommendation=Recommendation.objects.get(), user=prescriber)
    lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(days=8), entries=[LabEntry("cpk", "200")], entered_by=nurse)
    recommendation_accept(recommendation=Recommendation.objects.get(status="pending"), user=prescriber)
    lab_panel_record(patient=patient, collected_at=timezone.now() - timedelta(days=1), entries=[LabEntry("cpk", "900")], entered_by=nurse)
    rec = Recommendation.objects.get(status="pending")
    assert [r["id"] for r in rec.output["rules"]] == ["C2"] and rec.output["resume_dose_mg_bid"] == 450
    case, _, _ = build_case(patient.courses.get())
    assert case.cpk_over_5x_uln_occurrences == 1


def test_clinical_event_runs_the_engine_too(patient, nurse, prescriber):
    clinical_event_record(patient=patient, recorded_by=nurse, kind=ClinicalEvent.Kind.ILD, grade=2,
                          onset_date=timezone.localdate(), ild_causality="treatment_related")
    rec = Recommendation.objects.get()
    assert rec.action == "discontinue" and rec.triggering_event.kind == "ild"
    assert "brigatinib" in rec.output["information"][0]
    recommendation_accept(recommendation=rec, user=prescriber)
    assert patient.courses.get().dose_state == "discontinued"


def test_bradycardia_with_adjusted_drug_lets_the_prescriber_choose(patient, nurse, prescriber):
    clinical_event_record(patient=patient, recorded_by=nurse, kind=ClinicalEvent.Kind.BRADYCARDIA, grade=2,
                          onset_date=timezone.localdate(), bradycardia="symptomatic",
                          contributing_medication=True, contributing_medication_adjusted=True)
    rec = Recommendation.objects.get()
    assert rec.action == "clinician_decision" and len(rec.options) == 2
    with pytest.raises(InputError, match="Choose one of the options"):
        recommendation_accept(recommendation=rec, user=prescriber)
    recommendation_accept(recommendation=rec, user=prescriber, option=1)
    assert patient.courses.get().resume_dose_mg_bid == 450


def test_a_manual_dose_change_supersedes_a_pending_recommendation(patient, nurse, prescriber, client):
    alt(patient, nurse, 250)
    client.force_login(prescriber)
    client.post(reverse("dose_change", args=[patient.pk]),
                {"action": "withhold", "dose_mg_bid": "300", "effective_date": timezone.localdate().isoformat(),
                 "reason": "prescriber_choice", "version": patient.courses.get().version})
    first = Recommendation.objects.order_by("pk").first()
    assert first.status == "superseded"
    assert [h.status for h in first.history.order_by("history_date")][-1] == "superseded"  # on the trail
    # The manual hold has no recovery condition: the engine asks for the label's (§4.1 H1).
    again = Recommendation.objects.get(status="pending")
    assert "H1" in [r["id"] for r in again.output["rules"]] and again.output["resume_when"]


def test_an_unrelated_dose_change_does_not_lose_a_grade_3_alt(patient, nurse, prescriber, client):
    """Fresh-eyes finding (issue #12): ALT 7.5× ULN asked for a withhold; the prescriber
    reduced the dose for fatigue instead; the withhold was superseded and nothing asked
    again. The engine runs after a prescriber's own change and asks again."""
    alt(patient, nurse, 300)
    client.force_login(prescriber)
    client.post(reverse("dose_change", args=[patient.pk]),
                {"action": "dose", "dose_mg_bid": "450", "effective_date": timezone.localdate().isoformat(),
                 "reason": "toxicity", "toxicity": "Fatigue", "toxicity_grade": "2",
                 "version": patient.courses.get().version})
    assert patient.courses.get().dose_mg_bid == 450
    again = Recommendation.objects.get(status="pending")
    assert again.action == "withhold"


# --- through the pages ----------------------------------------------------------------


def urls(patient, rec, what):
    return reverse(f"recommendation_{what}", args=[patient.pk, rec.pk])


def test_nurse_sees_and_comments_but_cannot_decide(client, patient, nurse):
    alt(patient, nurse, 250)
    rec = Recommendation.objects.get()
    client.force_login(nurse)
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "Withhold; resume at 450 mg twice daily" in page and "Reference §4.1 H1" in page
    assert "Waiting for a prescriber" in page and "Accept and record" not in page
    assert client.post(urls(patient, rec, "accept"), {"effective_date": timezone.localdate().isoformat(), "version": rec.course.version}).status_code == 403
    assert client.post(urls(patient, rec, "override"), {"reason": "no"}).status_code == 403
    client.post(urls(patient, rec, "comment"), {"text": "Patient reports <b>no</b> symptoms"})
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "Patient reports &lt;b&gt;no&lt;/b&gt; symptoms" in page
    rec.refresh_from_db()
    assert rec.status == "pending"


def test_override_needs_a_reason_and_shows_in_the_history(client, patient, nurse, prescriber):
    alt(patient, nurse, 250)
    rec = Recommendation.objects.get()
    client.force_login(prescriber)
    response = client.post(urls(patient, rec, "override"), {"reason": "  ", "version": rec.course.version}, follow=True)
    assert "Give the reason for overriding" in response.content.decode()
    rec.refresh_from_db()
    assert rec.status == "pending"
    client.post(urls(patient, rec, "override"), {"reason": "Known Gilbert's; ALT from statin started last week",
                                                  "version": rec.course.version})
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "recommendation overridden, dose unchanged" in page and "statin started last week" in page
    assert patient.courses.get().dose_state == "on_drug"


def test_prescriber_accepts_through_the_page(client, patient, nurse, prescriber):
    alt(patient, nurse, 250)
    rec = Recommendation.objects.get()
    client.force_login(prescriber)
    response = client.post(urls(patient, rec, "accept"), {"effective_date": timezone.localdate().isoformat(), "version": rec.course.version}, follow=True)
    page = response.content.decode()
    assert "600 mg twice daily → <strong>withheld (resume at 450 mg twice daily)</strong>" in page
    assert "accepted by Prescriber" in page


def test_accept_refuses_a_future_date(client, patient, nurse, prescriber):
    alt(patient, nurse, 250)
    rec = Recommendation.objects.get()
    client.force_login(prescriber)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = client.post(urls(patient, rec, "accept"), {"effective_date": tomorrow, "version": rec.course.version}, follow=True)
    assert "cannot be in the future" in response.content.decode()
    rec.refresh_from_db()
    assert rec.status == "pending"
