"""Clinical safety at the label's edges, through the pages: a nurse records, a prescriber
decides. Each test names the section of ../shared/clinical-reference.md it follows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.models import MonitoringItem
from patients.models import LabResult, Recommendation
from patients.tests.factories import clinic_ranges, started_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber, days_ago=60)


def labs(client, user, patient, hours_ago=1, **values):
    """Post the lab-entry page: values are (value, unit, limit) or a value in the canonical
    unit with the clinic's default range."""
    client.force_login(user)
    data = {"collected_at": (timezone.localtime() - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")}
    for analyte, v in values.items():
        value, unit, limit = v if isinstance(v, tuple) else (v, "", "")
        data.update({f"{analyte}_value": str(value), f"{analyte}_unit": unit, f"{analyte}_limit": str(limit)})
    response = client.post(reverse("lab_panel", args=[patient.pk]), data, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain, response.content.decode()[:3000]  # saved, back to the patient page
    return response


def event(client, user, patient, days_ago=0, **fields):
    client.force_login(user)
    data = {"onset_date": (timezone.localdate() - timedelta(days=days_ago)).isoformat(), **fields}
    response = client.post(reverse("event_create", args=[patient.pk]), data, follow=True)
    assert response.redirect_chain, response.content.decode()[:3000]
    return response


def pending(patient) -> Recommendation:
    return Recommendation.objects.get(course__patient=patient, status="pending")


def accept(client, user, patient, rec, option=None, recheck=None):
    client.force_login(user)
    data = {"effective_date": timezone.localdate().isoformat(), "version": rec.course.version}
    if option is not None:
        data["option"] = option
    if recheck is not None:
        data["recheck_every_days"] = recheck
    response = client.post(reverse("recommendation_accept", args=[patient.pk, rec.pk]), data, follow=True)
    assert response.status_code == 200
    return response


def course(patient):
    return patient.courses.get()


# --- 1. Units: the lab-entry page at exact boundaries -----------------------------------------


@pytest.mark.parametrize(
    ("entries", "action", "rules", "shown"),
    [
        # §4.1: ALT > 5× with bilirubin exactly 2.0× ULN (41 of 20.5 µmol/L) is H1, not H2.
        ({"alt": ("300", "U/L", "40"), "total_bilirubin": ("41", "µmol/L", "20.5")}, "withhold", ["H1"], "2×"),
        ({"alt": ("300", "U/L", "40"), "total_bilirubin": ("41.01", "µmol/L", "20.5")}, "discontinue", ["H2"], "2.01×"),
        # §4.3: creatinine exactly 6.0× ULN (582 of 97 µmol/L) is grade 3, not grade 4.
        ({"creatinine": ("582", "µmol/L", "97")}, "withhold", ["R3"], "6×"),
        ({"creatinine": ("582.1", "µmol/L", "97")}, "discontinue", ["R4"], "6.01×"),
        # §4.1 H3 needs bilirubin > 3×: exactly 3.0× in µmol/L gives nothing.
        ({"total_bilirubin": ("61.5", "µmol/L", "20.5")}, None, [], "3×"),
        # §4.1 H1 needs ALT > 5×: exactly 5.0× in µkat/L (3 of 0.6) gives nothing.
        ({"alt": ("3", "µkat/L", "0.6"), "total_bilirubin": ("10", "µmol/L", "20.5")}, None, [], "5×"),
    ],
)
def test_lab_entry_page_grades_exact_boundaries_in_si_units(client, nurse, patient, entries, action, rules, shown):
    body = labs(client, nurse, patient, **entries).content.decode()
    recs = Recommendation.objects.filter(course__patient=patient)
    if action is None:
        assert not recs.exists()
    else:
        rec = recs.get()
        assert rec.action == action and [r["id"] for r in rec.output["rules"] if r["id"] != "FLOOR"] == rules
    assert shown in body
    for lab in LabResult.objects.filter(patient=patient):
        exact = lab.measurement()
        assert float(lab.x_uln) == pytest.approx(float(exact.x_uln), abs=0.001) and lab.x_uln >= exact.x_uln


def test_assess_command_and_page_agree_on_grade_and_multiple(client, nurse, patient):
    """The same µmol/L creatinine through the page and through `manage.py assess`."""
    import json
    from io import StringIO

    from django.core.management import call_command

    labs(client, nurse, patient, creatinine=("582", "µmol/L", "97"))
    stored = LabResult.objects.get(patient=patient)
    out = StringIO()
    case = {"dose_mg_bid": 600, "labs": {"creatinine": {"value": "582", "unit": "µmol/L", "uln": "97"}}}
    path = __import__("tempfile").NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8")
    path.write(json.dumps(case, ensure_ascii=False))
    path.close()
    call_command("assess", path.name, stdout=out)
    result = json.loads(out.getvalue())
    assert result["grades"]["creatinine"] == stored.grade == 3
    assert result["action"] == pending(patient).action == "withhold"


# --- 2. A worse result during a hold is not lost --------------------------------------------


def test_cpk_over_10x_during_a_cpk_hold_tightens_the_hold_to_a_reduced_dose(client, nurse, prescriber, patient):
    labs(client, nurse, patient, hours_ago=30, cpk="1000")  # 5.9× ULN 170: C1, same dose
    first = pending(patient)
    assert first.output["resume_dose_mg_bid"] == 600
    accept(client, prescriber, patient, first)
    assert course(patient).resume_dose_mg_bid == 600
    labs(client, nurse, patient, hours_ago=20, cpk="1800")  # 10.6×: C2 (§4.5)
    tightened = pending(patient)
    assert tightened.action == "withhold" and tightened.output["hold_changed"] is True
    assert tightened.output["resume_dose_mg_bid"] == 450
    assert "Keep withholding, now stricter" in tightened.headline
    accept(client, prescriber, patient, tightened)
    c = course(patient)
    assert (c.dose_state, c.resume_dose_mg_bid) == ("withheld", 450)
    labs(client, nurse, patient, hours_ago=2, cpk="300")  # recovered: ≤ 2.5×
    resume = pending(patient)
    assert resume.action == "resume" and resume.output["resume_dose_mg_bid"] == 450


def test_a_worse_result_tightens_the_resume_dose_even_if_nobody_accepted_the_stricter_hold(
        client, nurse, prescriber, patient):
    labs(client, nurse, patient, hours_ago=30, cpk="1000")
    accept(client, prescriber, patient, pending(patient))
    labs(client, nurse, patient, hours_ago=20, cpk="1800")
    assert pending(patient).output["resume_dose_mg_bid"] == 450  # not decided yet
    labs(client, nurse, patient, hours_ago=2, cpk="300")
    resume = pending(patient)
    assert resume.action == "resume" and resume.output["resume_dose_mg_bid"] == 450, "never 'resume at 600'"
    assert Recommendation.objects.filter(course__patient=patient, status="superseded").count() == 1


def test_a_reducing_trigger_during_a_same_dose_hold_unions_the_recovery_conditions(client, nurse, prescriber, patient):
    labs(client, nurse, patient, hours_ago=30, cpk="1000")
    accept(client, prescriber, patient, pending(patient))
    labs(client, nurse, patient, hours_ago=10, alt="250", total_bilirubin="0.8")  # H1
    rec = pending(patient)
    assert rec.output["resume_dose_mg_bid"] == 450
    assert {c["analyte"] for c in rec.output["resume_when"]} == {"cpk", "alt"}
    accept(client, prescriber, patient, rec)
    labs(client, nurse, patient, hours_ago=5, cpk="300")  # CPK recovered, ALT not yet rechecked
    assert not Recommendation.objects.filter(course__patient=patient, status="pending", action="resume").exists()
    labs(client, nurse, patient, hours_ago=1, alt="100")
    assert pending(patient).action == "resume" and pending(patient).output["resume_dose_mg_bid"] == 450


def test_a_reducing_trigger_during_a_work_up_hold_sets_the_reduced_resume_dose(client, nurse, prescriber, patient):
    event(client, nurse, patient, kind="hemolysis", hemolysis_status="suspected", grade=2)
    labs(client, nurse, patient, hours_ago=10, hemoglobin="9.1")
    accept(client, prescriber, patient, pending(patient))
    assert course(patient).resume_dose_mg_bid is None
    labs(client, nurse, patient, hours_ago=5, alt="250", total_bilirubin="0.8")
    rec = pending(patient)
    assert rec.output["resume_dose_mg_bid"] == 450 and rec.output["hold_changed"] is True


# --- 3. A suspicion is not a documentation -------------------------------------------------


def test_suspected_hemolysis_does_not_exclude_h2(client, nurse, patient):
    event(client, nurse, patient, kind="hemolysis", hemolysis_status="suspected", grade=2)
    labs(client, nurse, patient, alt="130", total_bilirubin="2.5")  # ALT 3.25×, bilirubin 2.08×
    rec = pending(patient)
    assert rec.action == "discontinue" and "H2" in [r["id"] for r in rec.output["rules"]]


def test_confirmed_hemolysis_excludes_h2_and_asks_for_review(client, nurse, patient):
    event(client, nurse, patient, kind="hemolysis", hemolysis_status="confirmed", grade=2)
    labs(client, nurse, patient, alt="250", total_bilirubin="2.5", hemoglobin="11")
    rec = pending(patient)
    ids = [r["id"] for r in rec.output["rules"]]
    assert "H2" not in ids and "H2-EXCLUDED" in ids and "H1" in ids


# --- 4. Hemolysis after the work-up --------------------------------------------------------


def test_work_up_hold_records_no_resume_dose(client, nurse, prescriber, patient):
    event(client, nurse, patient, kind="hemolysis", hemolysis_status="suspected", grade=2)
    labs(client, nurse, patient, hemoglobin="9.2")
    rec = pending(patient)
    assert rec.action == "withhold" and rec.output["resume_dose_mg_bid"] is None
    body = accept(client, prescriber, patient, rec).content.decode()
    c = course(patient)
    assert c.dose_state == "withheld" and c.resume_dose_mg_bid is None
    assert "decided by the prescriber on the result of the work-up" in body


def test_confirmation_after_hemoglobin_recovered_still_offers_reduce_or_discontinue(client, nurse, prescriber, patient):
    event(client, nurse, patient, days_ago=3, kind="hemolysis", hemolysis_status="suspected", grade=2)
    labs(client, nurse, patient, hours_ago=48, hemoglobin="9.2")
    accept(client, prescriber, patient, pending(patient))
    labs(client, nurse, patient, hours_ago=10, hemoglobin="12.5")
    event(client, nurse, patient, kind="hemolysis", hemolysis_status="confirmed", grade=2)
    rec = pending(patient)
    assert rec.action == "clinician_decision"
    assert [o["action"] for o in rec.options] == ["withhold", "discontinue"]
    assert rec.options[0]["resume_dose_mg_bid"] == 450
    accept(client, prescriber, patient, rec, option=0)
    assert course(patient).resume_dose_mg_bid == 450


def test_negative_work_up_closes_the_hold_with_no_change_and_a_review(client, nurse, prescriber, patient):
    event(client, nurse, patient, days_ago=3, kind="hemolysis", hemolysis_status="suspected", grade=2)
    labs(client, nurse, patient, hours_ago=48, hemoglobin="9.2")
    accept(client, prescriber, patient, pending(patient))
    event(client, nurse, patient, kind="hemolysis", hemolysis_status="not_confirmed", grade=2)
    rec = pending(patient)
    assert rec.action == "resume" and rec.output["resume_dose_mg_bid"] == 600
    assert any("no change" in line for line in rec.output["review"])
    accept(client, prescriber, patient, rec)
    assert (course(patient).dose_state, course(patient).dose_mg_bid) == ("on_drug", 600)


# --- 5. Bradycardia recovery: asymptomatic OR heart rate ≥ 60 ------------------------------


def test_heart_rate_60_meets_bradycardia_recovery_while_symptoms_are_still_recorded(client, nurse, prescriber, patient):
    event(client, nurse, patient, days_ago=2, kind="bradycardia", bradycardia="symptomatic", grade=2)
    rec = pending(patient)
    assert rec.output["resume_dose_mg_bid"] == 450
    accept(client, prescriber, patient, rec)
    labs(client, nurse, patient, heart_rate="60")
    resume = pending(patient)
    assert resume.action == "resume" and resume.output["resume_dose_mg_bid"] == 450


def test_an_asymptomatic_record_meets_bradycardia_recovery_with_a_slow_rate(client, nurse, prescriber, patient):
    event(client, nurse, patient, days_ago=2, kind="bradycardia", bradycardia="symptomatic", grade=2)
    accept(client, prescriber, patient, pending(patient))
    labs(client, nurse, patient, heart_rate="52")
    assert not Recommendation.objects.filter(status="pending").exists()
    event(client, nurse, patient, kind="bradycardia", bradycardia="asymptomatic", grade=1)
    assert pending(patient).action == "resume"


# --- 6. Toxicities with no label rule reach a prescriber -----------------------------------


def test_grade_3_event_with_no_rule_creates_a_review_recommendation_on_the_worklist(client, nurse, prescriber, patient):
    event(client, nurse, patient, kind="other", grade=3, notes="Grade 3 diarrhoea")
    rec = pending(patient)
    assert rec.action == "review" and rec.triggering_event.kind == "other"
    assert "Grade 3 toxicity without a label rule (Grade 3 diarrhoea)" in " ".join(rec.output["review"])
    client.force_login(prescriber)
    body = client.get(reverse("home")).content.decode()
    assert "Prescriber review: the label has no rule" in body
    accept(client, prescriber, patient, rec)
    rec.refresh_from_db()
    assert rec.status == "accepted" and rec.dose_event is None
    assert course(patient).dose_mg_bid == 600


def test_grade_2_event_with_no_rule_creates_nothing(client, nurse, patient):
    event(client, nurse, patient, kind="other", grade=2, notes="Fatigue")
    assert not Recommendation.objects.exists()


def test_gi_perforation_suggests_discontinuation_citing_the_eu_label(client, nurse, patient):
    event(client, nurse, patient, kind="gi_perforation", grade=3)
    rec = pending(patient)
    assert rec.action == "discontinue" and rec.output["rules"][0]["id"] == "GI"
    assert "EU" in rec.output["rules"][0]["source"]


@pytest.mark.parametrize("scar", ["sjs", "ten", "dress"])
def test_sjs_ten_or_dress_on_drug_suggests_discontinuation_and_never_rechallenge(client, nurse, prescriber, patient, scar):
    event(client, nurse, patient, kind="rash", grade=3, scar=scar, rash_bsa_percent=40)
    rec = pending(patient)
    assert rec.action == "discontinue" and "SCAR" in [r["id"] for r in rec.output["rules"]]
    client.force_login(prescriber)
    body = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "Never re-challenge with alectinib" in body and "§9.3" in body


# --- 7. Closer monitoring during a hold ------------------------------------------------------


def test_prescriber_sets_a_recheck_interval_that_drives_due_dates_until_the_hold_ends(
        client, nurse, prescriber, patient, django_capture_on_commit_callbacks):
    labs(client, nurse, patient, alt="250", ast="30", total_bilirubin="0.8")
    rec = pending(patient)
    client.force_login(prescriber)
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert 'name="recheck_every_days"' in page and 'value="7"' in page
    with django_capture_on_commit_callbacks(execute=True):
        accept(client, prescriber, patient, rec, recheck=5)
    c = course(patient)
    assert c.recheck_every_days == 5
    item = MonitoringItem.objects.get(course=c, requirement__code="lft")
    assert item.due_date == timezone.localdate() + timedelta(days=5)  # not a month later
    body = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "every 5 days until the hold ends" in body
    labs(client, nurse, patient, hours_ago=0, alt="100", ast="30", total_bilirubin="0.8")
    with django_capture_on_commit_callbacks(execute=True):
        accept(client, prescriber, patient, pending(patient))  # resume at 450
    c.refresh_from_db()
    assert c.dose_state == "on_drug" and c.recheck_every_days is None
    item.refresh_from_db()
    assert item.due_date > timezone.localdate() + timedelta(days=5)


def test_recheck_interval_makes_an_overdue_item_for_the_worklist(
        client, nurse, prescriber, patient, django_capture_on_commit_callbacks):
    labs(client, nurse, patient, hours_ago=24 * 9, alt="250", ast="30", total_bilirubin="0.8")
    rec = pending(patient)
    client.force_login(prescriber)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("recommendation_accept", args=[patient.pk, rec.pk]),
                    {"effective_date": (timezone.localdate() - timedelta(days=9)).isoformat(), "recheck_every_days": 7,
                     "version": rec.course.version})
    item = MonitoringItem.objects.get(course=course(patient), requirement__code="lft")
    assert item.due_date == timezone.localdate() - timedelta(days=2)
    assert item.overdue_from <= timezone.localdate()
    body = client.get(reverse("home")).content.decode()
    assert patient.mrn in body


# --- found by a fresh-eyes pass -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1,500", "is ambiguous (a thousands separator or a decimal comma?)"),  # was saved as 1.5 U/L, grade 0
        ("１５００", "must be a number"),  # full-width digits
        ("١٥٠٠", "must be a number"),  # Arabic-Indic digits
    ],
)
def test_a_value_that_could_be_misread_is_refused_with_a_message(client, nurse, patient, value, message):
    client.force_login(nurse)
    when = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("lab_panel", args=[patient.pk]), {"collected_at": when, "cpk_value": value})
    assert response.status_code == 200 and message in response.content.decode()
    assert not LabResult.objects.exists()


def test_a_decimal_comma_is_still_read(client, nurse, patient):
    labs(client, nurse, patient, total_bilirubin="1,5")
    assert LabResult.objects.get().reported_value == 1.5


@pytest.mark.parametrize(("field", "limit"), [("alt", "99999999999"), ("alt", "1000000"), ("cpk", "0.0000001"),
                                              ("creatinine", "1e-9"), ("hemoglobin", "99999999999")])
def test_an_implausible_reference_limit_is_refused_not_a_server_error(client, nurse, patient, field, limit):
    client.force_login(nurse)
    when = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    value = {"hemoglobin": "9", "creatinine": "1.2"}.get(field, "240")
    response = client.post(reverse("lab_panel", args=[patient.pk]),
                           {"collected_at": when, f"{field}_value": value, f"{field}_limit": limit})
    assert response.status_code == 200
    body = response.content.decode()
    assert "not a plausible reference limit" in body or "out of range" in body
    assert not LabResult.objects.exists()


def test_a_work_up_hold_rechecks_hemoglobin(client, nurse, prescriber, patient, django_capture_on_commit_callbacks):
    event(client, nurse, patient, kind="hemolysis", hemolysis_status="suspected", grade=2)
    labs(client, nurse, patient, hemoglobin="9.2")
    rec = pending(patient)
    assert rec.asks_recheck is True
    with django_capture_on_commit_callbacks(execute=True):
        accept(client, prescriber, patient, rec, recheck=3)
    item = MonitoringItem.objects.get(course=course(patient), requirement__code="hemoglobin")
    assert item.due_date == timezone.localdate() + timedelta(days=3)
