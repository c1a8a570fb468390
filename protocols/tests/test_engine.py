"""The toxicity engine, rule by rule, from ../shared/clinical-reference.md §3–§4.

Each row: a case, the expected action, resume dose, and the rules that must fire.
Boundaries are exact: "> 5× ULN" is strict (§4, A7). No database.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.case_input import case_from_json
from protocols.engine import ACTIONS, RULES, assess
from protocols.errors import InputError

ULN = {"alt": 40, "ast": 40, "total_bilirubin": "1.2", "creatinine": "1.1", "cpk": 170}


def case(dose=600, events=None, history=None, withheld=None, baseline=None, **values):
    labs = {}
    for analyte, value in values.items():
        if analyte == "hemoglobin":
            labs[analyte] = {"value": value, "lln": "12"}
        elif analyte == "heart_rate":
            labs[analyte] = {"value": value, "lln": 60}
        else:
            labs[analyte] = {"value": value, "uln": ULN[analyte]}
    data = {"dose_mg_bid": dose, "labs": labs, "events": events or {}, "history": history or {}}
    if withheld is not None:
        data["withheld"] = withheld
    if baseline:
        data["baseline"] = {a: {"value": v, "uln": ULN[a]} for a, v in baseline.items()}
    return case_from_json(json.loads(json.dumps(data)))


def run(c):
    out = assess(c)
    return out["action"], out["resume_dose_mg_bid"], [r["id"] for r in out["rules"]], out


# (name, case kwargs, action, resume dose, rules that fire) — each row cites its section.
TABLE = [
    # §4.1 H1: ALT or AST > 5× ULN with bilirubin ≤ 2× ULN -> withhold, resume one level lower
    ("§4.1 H1 ALT exactly 5.0× does not fire", dict(alt="200", total_bilirubin="0.8"), "continue", None, []),
    ("§4.1 H1 ALT just over 5×", dict(alt="200.01", total_bilirubin="0.8"), "withhold", 450, ["H1"]),
    ("§4.1 H1 AST over 5×", dict(ast="240", total_bilirubin="0.8"), "withhold", 450, ["H1"]),
    ("§4.1 H1 bilirubin exactly 2.0× still H1", dict(alt="240", total_bilirubin="2.4"), "withhold", 450, ["H1"]),
    ("§4.1 H1 at 450 resumes at 300", dict(dose=450, alt="240"), "withhold", 300, ["H1"]),
    ("§3 H1 at 300 -> discontinue (floor)", dict(dose=300, alt="240"), "discontinue", None, ["H1", "FLOOR"]),
    # §4.1 H2: ALT/AST > 3× and bilirubin > 2× without cholestasis/hemolysis -> discontinue
    ("§4.1 H2 ALT exactly 3.0× does not fire", dict(alt="120", total_bilirubin="2.5"), "continue", None, []),
    ("§4.1 H2 fires just over 3× with bili > 2×", dict(alt="120.1", total_bilirubin="2.41"), "discontinue", None, ["H2"]),
    ("§4.1 H2 bili exactly 2.0× does not fire", dict(alt="130", total_bilirubin="2.4"), "continue", None, []),
    ("§4.1 H2 overrides H1 and H3", dict(alt="300", total_bilirubin="4"), "discontinue", None, ["H2"]),
    # §4.1 A3: cholestasis/hemolysis documented -> fall through to H1/H3 + review
    ("§4.1 A3 H2 excluded, ALT > 5× treated as H1",
     dict(alt="300", total_bilirubin="2.5", events={"cholestasis_or_hemolysis": True}), "withhold", 450, ["H2-EXCLUDED", "H1"]),
    ("§4.1 A3 H2 excluded, bili > 3× -> H3",
     dict(alt="130", total_bilirubin="3.7", events={"cholestasis_or_hemolysis": True}), "withhold", 450, ["H2-EXCLUDED", "H3"]),
    # §4.1 H3: bilirubin > 3× ULN -> withhold, resume lower (exact decimal: 3.6 = 3.0× of 1.2)
    ("§4.1 H3 bilirubin exactly 3.0× (3.6 mg/dL) does not fire", dict(total_bilirubin="3.6"), "continue", None, []),
    ("§4.1 H3 bilirubin 3.61 fires", dict(total_bilirubin="3.61"), "withhold", 450, ["H3"]),
    # §4.2 ILD
    ("§4.2 ILD treatment-related -> discontinue", dict(events={"ild": True}), "discontinue", None, ["ILD"]),
    ("§4.2 A9 ILD under investigation -> withhold", dict(events={"ild_under_investigation": True}), "withhold", None, ["ILD-INVESTIGATING"]),
    # §4.3 renal (graded from creatinine, §8.2)
    ("§4.3 creatinine exactly 3.0× (G2) continues", dict(creatinine="3.3"), "continue", None, []),
    ("§4.3 grade 3 -> withhold, reduce", dict(creatinine="3.31"), "withhold", 450, ["R3"]),
    ("§4.3 creatinine exactly 6.0× is still grade 3", dict(creatinine="6.6"), "withhold", 450, ["R3"]),
    ("§4.3 grade 4 -> discontinue", dict(creatinine="6.61"), "discontinue", None, ["R4"]),
    # §4.4 bradycardia
    ("§4.4 B0 asymptomatic -> continue", dict(heart_rate=50, events={"bradycardia": "asymptomatic"}), "continue", None, ["B0"]),
    ("§4.4 B1 contributing drug adjusted -> prescriber chooses same or reduced",
     dict(events={"bradycardia": "symptomatic", "contributing_medication": True, "contributing_medication_adjusted": True}),
     "clinician_decision", None, ["B1"]),
    ("§4.4 B2 no contributing drug -> withhold, reduce",
     dict(events={"bradycardia": "symptomatic"}), "withhold", 450, ["B2"]),
    ("§4.4 B2 contributing drug not adjusted -> reduce",
     dict(events={"bradycardia": "symptomatic", "contributing_medication": True}), "withhold", 450, ["B2"]),
    ("§4.4 B3 life-threatening, no contributing drug -> discontinue",
     dict(events={"bradycardia": "life_threatening"}), "discontinue", None, ["B3"]),
    ("§4.4 B4 life-threatening, drug adjusted -> withhold, reduce",
     dict(events={"bradycardia": "life_threatening", "contributing_medication": True, "contributing_medication_adjusted": True}),
     "withhold", 450, ["B4"]),
    ("§4.4 B5 life-threatening recurs -> discontinue",
     dict(events={"bradycardia": "life_threatening", "contributing_medication": True, "contributing_medication_adjusted": True},
          history={"life_threatening_bradycardia_occurrences": 1}), "discontinue", None, ["B5"]),
    # §4.5 CPK
    ("§4.5 CPK exactly 5.0× does not fire", dict(cpk=850), "continue", None, []),
    ("§4.5 C1 CPK just over 5× -> withhold, same dose", dict(cpk=851), "withhold", 600, ["C1"]),
    ("§4.5 C1 CPK exactly 10× still C1", dict(cpk=1700), "withhold", 600, ["C1"]),
    ("§4.5 C2 CPK over 10× -> reduce", dict(cpk=1701), "withhold", 450, ["C2"]),
    ("§4.5 C2 second occurrence over 5× -> reduce", dict(cpk=900, history={"cpk_over_5x_uln_occurrences": 1}), "withhold", 450, ["C2"]),
    ("§4.5 C1 at 300 resumes at 300", dict(dose=300, cpk=900), "withhold", 300, ["C1"]),
    ("§3 C2 at 300 -> discontinue", dict(dose=300, cpk=2000), "discontinue", None, ["C2", "FLOOR"]),
    # §4.6 hemolytic anemia
    ("§4.6 Hb exactly 10.0 with suspicion does not fire", dict(hemoglobin="10.0", events={"hemolysis_suspected": True}), "continue", None, []),
    ("§4.6 HA1 Hb < 10 suspected -> withhold for work-up", dict(hemoglobin="9.9", events={"hemolysis_suspected": True}), "withhold", None, ["HA1"]),
    ("§4.6 HA2 confirmed -> reduce or discontinue", dict(hemoglobin="8.5", events={"hemolysis_confirmed": True}), "clinician_decision", None, ["HA2"]),
    ("§4.6 Hb < 10 not suspected -> prescriber review, no dose change", dict(hemoglobin="9.0"), "review", None, ["HB-LOW"]),
    # §4.8 combinations: most protective wins, one step per hold
    ("§4.8 H1 + C1 -> withhold reduced (one step)", dict(alt="250", cpk=900), "withhold", 450, ["H1", "C1"]),
    ("§4.8 C1 + B1 -> prescriber chooses same or reduced", dict(cpk=900, events={"bradycardia": "symptomatic", "contributing_medication": True, "contributing_medication_adjusted": True}),
     "clinician_decision", None, ["B1", "C1"]),
    ("§4.8 B1 + H1 -> reduced wins", dict(alt="250", events={"bradycardia": "symptomatic", "contributing_medication": True, "contributing_medication_adjusted": True}),
     "withhold", 450, ["H1", "B1"]),
    ("§4.8 ILD + C1 -> discontinue", dict(cpk=900, events={"ild": True}), "discontinue", None, ["ILD", "C1"]),
    ("§4.8 H1 + H3 with cholestasis -> one step", dict(alt="250", total_bilirubin="4.2", events={"cholestasis_or_hemolysis": True}),
     "withhold", 450, ["H2-EXCLUDED", "H1", "H3"]),
    ("normal labs -> continue", dict(alt="30", ast="25", total_bilirubin="0.8", cpk=100, creatinine="0.9"), "continue", None, []),
]


@pytest.mark.parametrize(("name", "kwargs", "action", "resume_dose", "rules"), TABLE, ids=[t[0] for t in TABLE])
def test_rule_table(name, kwargs, action, resume_dose, rules):
    got_action, got_dose, got_rules, out = run(case(**kwargs))
    assert got_action == action, out
    assert got_dose == resume_dose, out
    assert got_rules == rules, out
    for r in out["rules"]:
        assert r["source"].startswith("Reference §") and r["text"]


def test_the_issue_example_withholds_and_resumes_at_450_on_alt_recovery():
    _, _, _, out = run(case(alt="250", ast="90", total_bilirubin="0.8", cpk=900, baseline={"alt": 30}))
    assert out["resume"] == "reduced" and out["resume_dose_mg_bid"] == 450
    assert {"analyte": "alt", "max_x_uln": 3.0, "or_baseline": True} in [
        {k: c[k] for k in ("analyte", "max_x_uln", "or_baseline")} for c in out["resume_when"]]
    assert out["grades"]["alt"] == 3 and out["grades"]["cpk"] == 3


def test_b1_offers_both_readings_table_first():
    _, _, _, out = run(case(events={"bradycardia": "symptomatic", "contributing_medication": True,
                                    "contributing_medication_adjusted": True}))
    assert [(o["action"], o["resume"], o["resume_dose_mg_bid"]) for o in out["options"]] == [
        ("withhold", "same", 600), ("withhold", "reduced", 450)]
    assert any("A1" in line for line in out["review"])


def test_a3_raises_a_review_flag():
    _, _, _, out = run(case(alt="300", total_bilirubin="2.5", events={"cholestasis_or_hemolysis": True}))
    assert any("A3" in line for line in out["review"])


def test_discontinuation_lists_alternatives_as_information_only():
    _, _, _, out = run(case(events={"ild": True}))
    assert "brigatinib" in out["information"][0] and "information only" in out["information"][0]


# --- while withheld: the recovery check ---------------------------------------------------------


def held_after_alt():
    _, _, _, out = run(case(alt="240", baseline={"alt": 30}))
    return {k: out[k] for k in ("action", "resume", "resume_dose_mg_bid", "resume_when")}


@pytest.mark.parametrize(
    ("alt", "action", "why"),
    [
        ("120", "resume", "§4.1 H1 recovery: exactly 3.0× ULN is ≤ 3×"),
        ("80", "resume", "§4.1 H1 recovery: 2× ULN"),
        ("120.5", "withhold", "§4.1 H1 recovery: just above 3×"),
    ],
)
def test_recovery_condition_decides_between_holding_and_resuming(alt, action, why):
    got, dose, rules, out = run(case(alt=alt, withheld=held_after_alt(), baseline={"alt": 30}))
    assert got == action, why
    assert dose == 450
    if action == "resume":
        assert "RECOVERED" in rules


def test_recovery_back_to_baseline_counts_even_above_3x():
    _, _, _, out = run(case(alt="240", baseline={"alt": 150}))  # baseline abnormal (3.75× ULN)
    held = {k: out[k] for k in ("action", "resume", "resume_dose_mg_bid", "resume_when")}
    got, _, _, _ = run(case(alt="140", withheld=held, baseline={"alt": 150}))
    assert got == "resume"


def test_no_new_result_keeps_the_hold():
    got, dose, _, _ = run(case(cpk=100, withheld=held_after_alt()))
    assert (got, dose) == ("withhold", 450)


def test_new_toxicity_during_the_hold_keeps_holding_at_the_lower_dose():
    got, dose, _, out = run(case(alt="80", cpk=2000, withheld=held_after_alt()))
    assert (got, dose) == ("withhold", 450)
    assert {c["analyte"] for c in out["resume_when"]} == {"alt", "cpk"}


def test_bradycardia_hold_recovers_on_heart_rate_60():
    _, _, _, out = run(case(heart_rate=48, events={"bradycardia": "symptomatic"}))
    held = {k: out[k] for k in ("action", "resume", "resume_dose_mg_bid", "resume_when")}
    assert run(case(heart_rate=59, withheld=held))[0] == "withhold"
    assert run(case(heart_rate=60, withheld=held))[0] == "resume"
    assert run(case(withheld=held, events={"bradycardia": "asymptomatic"}))[0] == "resume"


def test_hemolysis_hold_is_never_cleared_by_numbers_alone():
    _, _, _, out = run(case(hemoglobin="9", events={"hemolysis_suspected": True}))
    held = {k: out[k] for k in ("action", "resume", "resume_dose_mg_bid", "resume_when")}
    assert run(case(hemoglobin="13", withheld=held))[0] == "withhold"


def test_japanese_advanced_regime_asks_the_clinician():
    data = {"dose_mg_bid": 300, "regime": "jp_advanced", "labs": {"alt": {"value": 250, "uln": 40}}}
    out = assess(case_from_json(data))
    assert out["action"] == "clinician_decision"
    assert "REGIME" in [r["id"] for r in out["rules"]]


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dose_mg_bid": 500}, "600, 450 or 300"),
        ({"dose_mg_bid": "600"}, "600, 450 or 300"),
        ({}, "dose_mg_bid is required"),
        ({"dose_mg_bid": 600, "labs": {"ggt": {"value": 5, "uln": 3}}}, "Unknown analyte 'ggt'"),
        ({"dose_mg_bid": 600, "labs": {"alt": {"value": 50}}}, "labs.alt.uln is required"),
        ({"dose_mg_bid": 600, "labs": {"alt": {"value": 50, "uln": 40, "unit": "mg"}}}, "Unknown unit"),
        ({"dose_mg_bid": 600, "labs": {"alt": {"value": -5, "uln": 40}}}, "cannot be negative"),
        ({"dose_mg_bid": 600, "labs": {"heart_rate": {"value": 900}}}, "not a possible value"),
        ({"dose_mg_bid": 600, "events": {"bradycardia": "mild"}}, "events.bradycardia"),
        ({"dose_mg_bid": 600, "events": {"ild": "yes"}}, "events.ild must be true or false"),
        ({"dose_mg_bid": 600, "history": {"cpk_over_5x_uln_occurrences": -1}}, "whole number"),
        ({"dose_mg_bid": 600, "surprise": 1}, "Unknown key"),
        ([], "JSON object"),
    ],
)
def test_bad_input_is_refused_with_a_message(data, message):
    with pytest.raises(InputError, match=message):
        assess(case_from_json(data))


def test_units_are_converted_before_the_rules():
    data = {"dose_mg_bid": 600, "labs": {"total_bilirubin": {"value": "63", "uln": "20.52", "unit": "µmol/L"}}}
    out = assess(case_from_json(data))
    assert out["action"] == "withhold" and out["rules"][0]["id"] == "H3"  # 3.07× ULN


ROOT = Path(__file__).resolve().parents[2]


def _command(stdin: str):
    return subprocess.run([sys.executable, "manage.py", "assess", "-"], input=stdin, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "VAR_DIR": "/tmp/assess-test"})


def test_assess_command_prints_json():
    result = _command(json.dumps({"dose_mg_bid": 600, "labs": {"alt": {"value": 250, "uln": 40}}}))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["resume_dose_mg_bid"] == 450


@pytest.mark.parametrize(("stdin", "message"), [("{bad", "malformed JSON"), ('{"dose_mg_bid": 500}', "600, 450 or 300")])
def test_assess_command_exits_2_with_one_line_on_stderr(stdin, message):
    result = _command(stdin)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


# --- property: any input gives a valid recommendation, never a higher dose after toxicity ---------

values = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def cases(draw):
    dose = draw(st.sampled_from([600, 450, 300]))
    labs = {}
    for analyte, uln in ULN.items():
        if draw(st.booleans()):
            labs[analyte] = {"value": str(draw(st.decimals(min_value=0, max_value=D(uln) * 25, places=2))), "uln": str(uln)}
    if draw(st.booleans()):
        labs["hemoglobin"] = {"value": str(draw(st.decimals(min_value=1, max_value=20, places=1))), "lln": "12"}
    if draw(st.booleans()):
        labs["heart_rate"] = {"value": draw(st.integers(20, 200)), "lln": 60}
    events = {
        "ild": draw(st.booleans()),
        "bradycardia": draw(st.sampled_from([None, "asymptomatic", "symptomatic", "life_threatening"])),
        "contributing_medication": draw(st.booleans()),
        "contributing_medication_adjusted": draw(st.booleans()),
        "hemolysis_suspected": draw(st.booleans()),
        "cholestasis_or_hemolysis": draw(st.booleans()),
    }
    history = {"cpk_over_5x_uln_occurrences": draw(st.integers(0, 3)),
               "life_threatening_bradycardia_occurrences": draw(st.integers(0, 2))}
    return {"dose_mg_bid": dose, "labs": labs, "events": events, "history": history}


@settings(max_examples=400, deadline=None)
@given(cases())
def test_any_case_gives_a_valid_recommendation_and_never_a_higher_dose(data):
    out = assess(case_from_json(data))
    assert out["action"] in ACTIONS
    assert {r["id"] for r in out["rules"]} <= set(RULES)
    options = out.get("options") or [out]
    if out["action"] == "clinician_decision":
        assert len(options) >= 2
    for opt in options:
        assert opt["action"] in ("continue", "review", "withhold", "discontinue")
        dose = opt.get("resume_dose_mg_bid")
        if dose is not None:
            assert dose in (600, 450, 300)
            assert dose <= data["dose_mg_bid"], "never above the current dose after a toxicity"
        if opt["action"] == "withhold" and opt.get("resume") == "reduced":
            assert dose < data["dose_mg_bid"]
    if out["action"] == "continue":
        assert out["resume_dose_mg_bid"] is None


def test_the_rules_import_no_django():
    """The engine and the schedule rules are pure Python (issue: no database, no models)."""
    code = ("import sys; import protocols.engine, protocols.ctcae, protocols.dosing, monitoring.rules; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'django'); print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- while withheld (reference §4.4, §4.5, §4.6, §4.8) -----------------------------------------


def _held(resume_dose, *criteria):
    return {"resume": "same" if resume_dose == 600 else "reduced", "resume_dose_mg_bid": resume_dose,
            "resume_when": list(criteria)}


def test_b1_choice_made_at_the_hold_is_not_asked_again_while_symptoms_persist():
    from protocols.engine import HR_RECOVERY

    events = {"bradycardia": "symptomatic", "contributing_medication": True, "contributing_medication_adjusted": True}
    out = assess(case(events=events, heart_rate="50", withheld=_held(600, HR_RECOVERY)))
    assert out["action"] == "withhold" and out["hold_changed"] is False and out["resume_dose_mg_bid"] == 600


def test_hemolysis_confirmed_during_a_work_up_hold_offers_reduce_or_discontinue_once():
    workup = {"analyte": None, "clinician": "hemolysis_workup", "text": "work-up"}
    out = assess(case(hemoglobin="12.5", events={"hemolysis_confirmed": True}, withheld=_held(None, workup)))
    assert out["action"] == "clinician_decision" and out["hold_changed"] is True
    assert [o["action"] for o in out["options"]] == ["withhold", "discontinue"]
    chosen = out["options"][0]
    again = assess(case(hemoglobin="12.5", events={"hemolysis_confirmed": True},
                        withheld=_held(chosen["resume_dose_mg_bid"], *chosen["resume_when"])))
    assert again["action"] == "withhold" and again["hold_changed"] is False


def test_an_earlier_cpk_value_during_the_hold_counts_with_the_occurrences_of_its_time():
    """§4.5: the first episode's value seen again in a snapshot is still C1, not a second occurrence."""
    from protocols.engine import Snapshot
    from protocols.labs import lab_from_reported

    crit = {"analyte": "cpk", "max_x_uln": 2.5, "or_baseline": True, "text": "CPK ≤ 2.5× ULN"}
    c = case(cpk="300", withheld=_held(600, crit), history={"cpk_over_5x_uln_occurrences": 1})
    c.during_hold = [Snapshot({"cpk": lab_from_reported("cpk", 1000, "U/L", uln=170)}, 0)]
    out = assess(c)
    assert out["action"] == "resume" and out["resume_dose_mg_bid"] == 600
    c.during_hold = [Snapshot({"cpk": lab_from_reported("cpk", 1800, "U/L", uln=170)}, 0)]  # > 10×: C2
    out = assess(c)
    assert out["action"] == "resume" and out["resume_dose_mg_bid"] == 450
    assert "C2" in [r["id"] for r in out["rules"]] and "HOLD-TIGHTENED" in [r["id"] for r in out["rules"]]


def test_confirmed_hemolysis_alone_excludes_h2_in_the_command_too():
    """§4.1 A3: a confirmed work-up is a clinician's statement; the web app and assess agree."""
    out = assess(case(alt="160", total_bilirubin="3.0", events={"hemolysis_confirmed": True}, hemoglobin="11"))
    ids = [r["id"] for r in out["rules"]]
    assert "H2" not in ids and {"H2-EXCLUDED", "HA2"} <= set(ids)
    assert out["action"] == "clinician_decision"  # HA2: one level lower, or discontinue (§4.6)


def test_suspected_hemolysis_with_h2_says_the_work_up_may_matter():
    out = assess(case(alt="160", total_bilirubin="3.0", events={"hemolysis_suspected": True}, hemoglobin="11"))
    assert out["action"] == "discontinue"
    assert any("suspected but not yet confirmed" in line for line in out["review"])
