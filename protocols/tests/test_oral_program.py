"""Issue #16, straight from ../shared/clinical-reference.md: capsules per dose at each level
(§2, §3), desensitization steps (§9.2), supply arithmetic, and what a check-in finding means
(§8.7, §4)."""

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import oral_program as op
from protocols.oral_program import Count, Fill, Period, supply

D0 = date(2026, 3, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


# (dose mg BID, capsules of 150 mg per dose): reference §2 (four 150 mg capsules) and §3.
@pytest.mark.parametrize(("dose", "per_dose"), [(600, 4), (450, 3), (300, 2)])
def test_a_fill_lasts_capsules_over_capsules_a_day_at_each_level(dose, per_dose):
    s = supply(fills=[Fill(D0, 120)], periods=[Period(D0, dose, dose)], today=D0)
    per_day = 2 * per_dose
    # Day 0's doses are taken from the fill: 120 - per_day on hand at the end of day 0.
    assert s.capsules == 120 - per_day
    whole_days = 120 // per_day  # days fully covered, day 0 included
    assert s.runs_out_on == day(whole_days)
    assert f"{per_dose} capsules of 150 mg" in op.dose_text(dose)


# Seegobin 2020 steps (reference §9.2), whole 150 mg capsules: capsules a day at each step.
@pytest.mark.parametrize(("morning", "evening", "per_day"), [(150, 150, 2), (300, 300, 4), (450, 450, 6),
                                                             (450, 600, 7), (600, 600, 8)])
def test_a_desensitization_step_takes_its_own_two_doses(morning, evening, per_day):
    s = supply(fills=[Fill(D0, 70)], periods=[Period(D0, morning, evening)], today=D0)
    assert s.capsules == 70 - per_day
    assert s.runs_out_on == day(70 // per_day)


def test_a_dose_change_mid_supply_changes_what_each_later_day_takes():
    # 120 capsules; 600 mg (8 a day) for days 0-4 = 40; then 450 mg (6 a day).
    periods = [Period(D0, 600, 600), Period(day(5), 450, 450)]
    s = supply(fills=[Fill(D0, 120)], periods=periods, today=day(4))
    assert s.capsules == 80
    assert s.runs_out_on == day(5 + 80 // 6)  # 13 more full days: days 5..17; day 18 short
    # Seen on day 10 (after the change): the same date.
    assert supply(fills=[Fill(D0, 120)], periods=periods, today=day(10)).runs_out_on == day(18)


def test_a_patient_who_ran_out_is_out_since_that_day_until_the_next_fill():
    # 112 capsules cover days 0-13; seen on day 20 the patient has been out since day 14.
    s = supply(fills=[Fill(D0, 112)], periods=[Period(D0, 600, 600)], today=day(20))
    assert (s.capsules, s.runs_out_on, s.ran_out(day(20))) == (0, day(14), True)
    refilled = supply(fills=[Fill(D0, 112), Fill(day(18), 112)], periods=[Period(D0, 600, 600)], today=day(20))
    assert refilled.runs_out_on == day(18 + 14) and not refilled.ran_out(day(20))


def test_a_hold_takes_nothing_and_has_no_run_out_date():
    periods = [Period(D0, 600, 600), Period(day(3), 0, 0)]
    s = supply(fills=[Fill(D0, 120)], periods=periods, today=day(10))
    assert s.capsules == 120 - 3 * 8
    assert s.runs_out_on is None
    assert (s.days_needed, s.days_covered) == (3, 3)


def test_a_reported_count_replaces_the_arithmetic():
    s = supply(fills=[Fill(D0, 120)], periods=[Period(D0, 600, 600)], today=day(5), counts=[Count(day(2), 40)])
    assert s.capsules == 40 - 3 * 8
    assert s.runs_out_on == day(6 + 16 // 8)


def test_days_not_covered_count_against_the_proportion_of_days_covered():
    # 56 capsules at 8 a day cover days 0-6; the next fill on day 10 leaves days 7-9 uncovered.
    s = supply(fills=[Fill(D0, 56), Fill(day(10), 56)], periods=[Period(D0, 600, 600)], today=day(16))
    assert (s.days_needed, s.days_covered) == (17, 14)
    assert s.pdc == Fraction(14, 17)


def test_japanese_strengths_make_a_dose_from_several_capsules():
    s = supply(fills=[Fill(D0, 10, 150), Fill(D0, 20, 40), Fill(D0, 20, 20)], periods=[Period(D0, 300, 300)], today=D0)
    assert s.on_hand == {150: 6, 40: 20, 20: 20}
    assert "2 capsules of 150 mg" in op.dose_text(300)
    assert op.dose_text(200, (20, 40, 150)) == "200 mg twice a day: 5 capsules of 40 mg each time."
    assert op.dose_text(190, (20, 40, 150)) == "190 mg twice a day: 1 of 150 mg and 1 of 40 mg each time."
    assert "cannot" not in op.dose_text(300) and "never opened" in op.dose_text(37)


def test_no_fill_no_supply():
    s = supply(fills=[], periods=[Period(D0, 600, 600)], today=day(3))
    assert (s.capsules, s.runs_out_on, s.pdc) == (0, None, None)


@pytest.mark.parametrize(("written", "filled", "expected"), [
    ([D0], [], D0), ([D0], [D0], None), ([D0], [day(-1)], D0), ([D0, day(30)], [day(2)], day(30)),
    ([], [D0], None),
])
def test_the_oldest_unfilled_prescription(written, filled, expected):
    assert op.unfilled_since(written, filled) == expected


@given(capsules=st.integers(1, 2000), dose=st.sampled_from([600, 450, 300]), seen=st.integers(0, 400))
def test_run_out_is_the_first_day_the_capsules_do_not_make_the_days_doses(capsules, dose, seen):
    per_day = 2 * dose // 150
    s = supply(fills=[Fill(D0, capsules)], periods=[Period(D0, dose, dose)], today=day(seen))
    full_days = capsules // per_day
    # Not yet out: the first day short; already out: the day it happened (in the past).
    assert s.runs_out_on == day(full_days)
    assert s.ran_out(day(seen)) == (seen >= full_days)
    assert s.days_covered == min(full_days, seen + 1)


# --- check-in findings (reference §8.7, last paragraph; §4) -------------------------------------

ROUTES = [
    # symptoms, new or worse breathing, heart rate → routes
    ({}, False, None, []),
    ({"myalgia": 1}, False, None, ["cpk_due"]),
    ({"myalgia": 3}, False, None, ["cpk_due", "review"]),
    ({"dyspnea": 1}, True, None, ["ild_review"]),
    ({"cough": 2}, True, None, ["ild_review"]),
    ({"cough": 2}, False, None, []),  # stable cough: recorded, no investigation asked
    ({"dizziness": 1}, False, None, ["heart_rate_needed"]),
    ({"dizziness": 1}, False, 59, ["bradycardia"]),
    ({"dizziness": 1}, False, 60, []),  # 60 bpm is not below 60 (§4.4)
    ({"syncope": 3}, False, 48, ["bradycardia"]),
    ({"syncope": 3}, False, 72, ["review"]),
    ({"rash": 2}, False, None, []),
    ({"rash": 3}, False, None, ["rash"]),
    ({"fatigue": 3, "nausea": 2}, False, None, ["review"]),
    ({"dysgeusia": 2, "edema": 1}, False, None, []),
]


@pytest.mark.parametrize(("symptoms", "worse", "hr", "routes"), ROUTES)
def test_each_symptom_routes_to_its_rule(symptoms, worse, hr, routes):
    found = op.consequences(symptoms, respiratory_new_or_worse=worse, heart_rate=hr)
    assert [c.route for c in found] == routes
    assert all(c.source.startswith("Reference §") for c in found)


@pytest.mark.parametrize(("code", "grade", "ok"), [
    ("myalgia", 3, True), ("myalgia", 4, False), ("rash", 4, False), ("syncope", 3, True), ("syncope", 2, False),
    ("dysgeusia", 3, False), ("dyspnea", 4, True), ("constipation", 0, True), ("unknown", 1, False),
])
def test_grades_are_the_terms_own(code, grade, ok):
    assert (op.grade_problem(code, grade) is None) == ok


def test_every_symptom_the_label_lists_can_be_graded():
    # Reference §8.7: fatigue, constipation, edema, myalgia, nausea, rash, photosensitivity,
    # vision disorders, dysgeusia, cough, dyspnea; and dizziness or syncope for §4.4.
    assert {s.code for s in op.SYMPTOMS} == {"fatigue", "constipation", "edema", "myalgia", "nausea", "rash",
                                             "photosensitivity", "vision", "dysgeusia", "cough", "dyspnea",
                                             "dizziness", "syncope"}


@pytest.mark.parametrize(("regime", "words"), [("us", "skip it"), ("eu", "within 6 hours")])
def test_the_missed_dose_rule_follows_the_label(regime, words):
    topics = {t.code: t for t in op.topics(dose_mg_bid=600, regime=regime)}
    assert words in topics["missed"].text
    assert "A6" in (topics["missed"].source or "")


def test_education_topics_carry_their_source_or_say_there_is_none():
    topics = op.topics(dose_mg_bid=450)
    assert {t.code for t in topics} == {"dose", "food", "whole", "missed", "vomited", "sun", "contraception", "report",
                                        "storage"}
    assert [t.code for t in topics if t.source is None] == ["storage"]
    assert "3 capsules of 150 mg" in topics[0].text


@pytest.mark.parametrize(("missed", "due", "share"), [(0, 28, Fraction(0)), (7, 28, Fraction(1, 4)),
                                                      (40, 28, Fraction(1)), (1, 0, None)])
def test_missed_share(missed, due, share):
    assert op.missed_share(missed, due) == share


def test_doses_due_skip_days_withheld_and_count_single_doses():
    periods = [Period(D0, 600, 600), Period(day(3), 0, 0), Period(day(6), 150, 0), Period(day(8), 450, 450)]
    # Days 0-2: 6 doses; 3-5 withheld: 0; 6-7: one dose a day: 2; 8-9: 4.
    assert op.doses_due(periods, D0, day(9)) == 12
    assert op.doses_due(periods, day(3), day(5)) == 0


def test_a_desensitization_day_is_taught_as_its_two_doses():
    topics = {t.code: t for t in op.topics(dose_mg_bid=None, step=(150, 300))}
    assert topics["dose"].text.startswith("Desensitization: today 150 mg (1 capsule) in the morning and 300 mg "
                                          "(2 capsules) in the evening.")
    assert "call the clinic before the next dose" in topics["missed"].text and "§9.3" in topics["missed"].source
