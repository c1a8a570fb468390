"""The `assess` input is validated whole: every bad input is one InputError naming the field;
good inputs (including the engine's own withhold output fed back) build the Case. And both
JSON commands (assess, monitoring_due) never crash: fuzzed JSON, mutated cases and random
bytes exit 2 with one line on stderr, or 0 with JSON. No database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.analytes import ANALYTES
from protocols.case_input import LongNumber, case_from_json
from protocols.engine import Snapshot, assess
from protocols.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def deep(depth: int, leaf: Any = 1, as_dict: bool = False) -> Any:
    """A value nested `depth` levels deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


def base(**extra: Any) -> dict[str, Any]:
    return {"dose_mg_bid": 600, **extra}


def lab(**extra: Any) -> dict[str, Any]:
    return {"alt": {"value": 50, "uln": 40, **extra}}


def held(**extra: Any) -> dict[str, Any]:
    crit = {"analyte": "alt", "max_x_uln": 3.0, "or_baseline": True, "text": "ALT ≤ 3× ULN"}
    return {"action": "withhold", "resume": "reduced", "resume_dose_mg_bid": 450, "resume_when": [crit], **extra}


def crit(**fields: Any) -> dict[str, Any]:
    return base(withheld=held(resume_when=[fields]))


BAD = [
    # (why, data, substring of the message: it names the field)
    ("not an object", [], "The case must be a JSON object"),
    ("dose missing", {}, "dose_mg_bid is required"),
    ("dose as string", {"dose_mg_bid": "600"}, "dose_mg_bid must be 600, 450 or 300, not '600'"),
    ("dose as bool", {"dose_mg_bid": True}, "dose_mg_bid must be 600, 450 or 300, not true"),
    ("dose as float", {"dose_mg_bid": 600.0}, "dose_mg_bid must be 600, 450 or 300"),
    # numbers
    ("5,000-digit int", base(labs={"alt": {"value": 10**5000 - 1, "uln": 40}}), "labs.alt.value must be less than 1e15"),
    ("5,000-digit JSON int", base(labs={"alt": {"value": LongNumber("9" * 5000), "uln": 40}}),
     "labs.alt.value has too many digits (a number of 5000 digits"),
    ("5,000-digit string", base(labs={"alt": {"value": "9" * 5000, "uln": 40}}), "labs.alt.value has too many digits"),
    ("31 significant digits", base(labs={"alt": {"value": "1." + "1" * 30, "uln": 40}}),
     "labs.alt.value has too many significant digits (31"),
    ("underscore", base(labs={"alt": {"value": "2_40", "uln": 40}}), "labs.alt.value must be a number, not '2_40'"),
    ("underscore in uln", base(labs={"alt": {"value": 50, "uln": "4_0"}}), "labs.alt.uln must be a number, not '4_0'"),
    ("huge exponent", base(labs={"alt": {"value": "1e999999", "uln": 40}}), "labs.alt.value must be between 1e-30 and 1e15"),
    ("exponent beyond Decimal", base(labs={"alt": {"value": "1e99999999999999999999999", "uln": 40}}),
     "labs.alt.value must be less than 1e15"),
    ("tiny", base(labs={"alt": {"value": "1e-31", "uln": 40}}), "labs.alt.value must be between 1e-30 and 1e15"),
    ("NaN literal", base(labs={"alt": {"value": float("nan"), "uln": 40}}), "labs.alt.value must be a finite number, not NaN"),
    ("Infinity literal", base(labs={"alt": {"value": 50, "uln": float("inf")}}), "labs.alt.uln must be a finite number, not Infinity"),
    ("-Infinity literal", base(labs={"alt": {"value": float("-inf"), "uln": 40}}), "labs.alt.value must be a finite number"),
    ("nan as text", base(labs={"alt": {"value": "nan", "uln": 40}}), "labs.alt.value must be a number, not 'nan'"),
    ("Infinity as text", base(labs={"alt": {"value": "Infinity", "uln": 40}}), "labs.alt.value must be a number"),
    ("spaces", base(labs={"alt": {"value": " 50", "uln": 40}}), "labs.alt.value must be a number, not ' 50'"),
    ("hex", base(labs={"alt": {"value": "0x32", "uln": 40}}), "labs.alt.value must be a number"),
    ("non-ASCII digits", base(labs={"alt": {"value": "٥٠", "uln": 40}}), "labs.alt.value must be a number"),
    ("bool as number", base(labs={"alt": {"value": True, "uln": 40}}), "labs.alt.value must be a number, not true"),
    ("null value", base(labs={"alt": {"value": None, "uln": 40}}), "labs.alt.value must be a number, not null"),
    ("list as number", base(labs={"alt": {"value": [50], "uln": 40}}), "labs.alt.value must be a number, not a list"),
    ("negative", base(labs={"alt": {"value": -5, "uln": 40}}), "labs.alt.value cannot be negative"),
    ("zero uln", base(labs={"alt": {"value": 5, "uln": 0}}), "labs.alt.uln must be greater than zero"),
    ("no uln", base(labs={"alt": {"value": 5}}), "labs.alt.uln is required"),
    ("no lln", base(labs={"hemoglobin": {"value": 12}}), "labs.hemoglobin.lln is required"),
    ("no value", base(labs={"alt": {"uln": 40}}), "labs.alt.value is required"),
    ("unknown analyte", base(labs={"ggt": {"value": 5, "uln": 3}}), "labs: Unknown analyte 'ggt'; known: alt"),
    ("unknown unit", base(labs=lab(unit="mg")), "labs.alt.unit: Unknown unit 'mg' for ALT"),
    ("unit not a string", base(labs=lab(unit=5)), "labs.alt.unit must be a string, not 5"),
    ("impossible value", base(labs={"heart_rate": {"value": 900}}), "labs.heart_rate.value: Heart rate of 900"),
    ("labs a list", base(labs=[1]), "labs must be an object, not a list"),
    ("baseline bad", base(baseline={"alt": {"value": "x", "uln": 40}}), "baseline.alt.value must be a number, not 'x'"),
    ("collected_at near 9999", base(labs=lab(collected_at="9999-12-31T23:59:59")),
     "labs.alt.collected_at must be between 1900-01-01 and 9000-12-31"),
    ("collected_at year 1", base(labs=lab(collected_at="0001-01-01T00:00")), "labs.alt.collected_at must be between"),
    ("collected_at not ISO", base(labs=lab(collected_at="yesterday")), "labs.alt.collected_at must be an ISO date-time"),
    ("collected_at a number", base(labs=lab(collected_at=20260101)), "labs.alt.collected_at must be an ISO date-time"),
    # events and history
    ("event not bool", base(events={"ild": "yes"}), "events.ild must be true or false, not 'yes'"),
    ("event as 1", base(events={"gi_perforation": 1}), "events.gi_perforation must be true or false, not 1"),
    ("bradycardia", base(events={"bradycardia": "mild"}), "events.bradycardia must be null, asymptomatic, symptomatic"),
    ("hemolysis_confirmed", base(events={"hemolysis_confirmed": "no"}), "events.hemolysis_confirmed must be true, false or null"),
    ("scar", base(events={"scar": "rash"}), "events.scar must be null, sjs, ten, dress or agep, not 'rash'"),
    ("unlisted grade 2", base(events={"unlisted": [{"term": "rash", "grade": 2}]}),
     "events.unlisted[0].grade must be 3, 4 or 5, not 2"),
    ("unlisted empty term", base(events={"unlisted": [{"term": " ", "grade": 3}]}), "events.unlisted[0].term must not be empty"),
    ("unlisted long term", base(events={"unlisted": [{"term": "x" * 81, "grade": 3}]}),
     "events.unlisted[0].term must be at most 80 characters"),
    ("unlisted surrogate", base(events={"unlisted": [{"term": "\ud800", "grade": 3}]}),
     "events.unlisted[0].term must be valid Unicode text"),
    ("unlisted not a list", base(events={"unlisted": {"term": "rash"}}), "events.unlisted must be a list"),
    ("history negative", base(history={"cpk_over_5x_uln_occurrences": -1}), "history.cpk_over_5x_uln_occurrences must be a whole number"),
    ("history too big", base(history={"cpk_over_5x_uln_occurrences": 10**6}), "from 0 to 1000, not 1000000"),
    ("history bool", base(history={"life_threatening_bradycardia_occurrences": True}), "must be a whole number from 0 to 1000, not true"),
    ("regime", base(regime="uk"), "regime must be us, eu, jp_adjuvant or jp_advanced, not 'uk'"),
    ("regime null", base(regime=None), "regime must be us"),
    ("starting dose", base(starting_dose_mg_bid=400), "starting_dose_mg_bid must be 600, 450, 300 or null, not 400"),
    # withheld and its resume_when
    ("withheld not an object", base(withheld="yes"), "withheld must be an object, not 'yes'"),
    ("withheld without resume_when", base(withheld={}), "withheld.resume_when is required"),
    ("resume_when not a list", base(withheld=held(resume_when={"analyte": "alt"})), "withheld.resume_when must be a list"),
    ("resume_when item a number", base(withheld=held(resume_when=[5])), "withheld.resume_when[0] must be an object, not 5"),
    ("resume_when item a string", base(withheld=held(resume_when=["alt <= 3x"])), "withheld.resume_when[0] must be an object"),
    ("criterion empty", crit(), "withheld.resume_when[0] must name an analyte with max_x_uln"),
    ("criterion without max_x_uln", crit(analyte="alt"), "withheld.resume_when[0]: A criterion on alt needs max_x_uln"),
    ("criterion unknown analyte", crit(analyte="ggt", max_x_uln=3), "withheld.resume_when[0].analyte must be null or one of"),
    ("criterion max_x_uln text", crit(analyte="alt", max_x_uln="three"), "withheld.resume_when[0].max_x_uln must be a number"),
    ("criterion max_x_uln bool", crit(analyte="alt", max_x_uln=True), "withheld.resume_when[0].max_x_uln must be a number, not true"),
    ("criterion max_x_uln zero", crit(analyte="alt", max_x_uln=0), "max_x_uln must be greater than zero"),
    ("criterion no-ULN analyte", crit(analyte="systolic_bp", max_x_uln=2), "systolic_bp has no ULN"),
    ("heart_rate without min", crit(analyte="heart_rate", or_asymptomatic=True), "A heart_rate criterion needs min"),
    ("heart_rate min impossible", crit(analyte="heart_rate", min=1000), "min must be from 20 to 250"),
    ("clinician unknown", crit(analyte=None, clinician="feels fine"), "withheld.resume_when[0].clinician must be one of"),
    ("clinician with max_x_uln", crit(max_x_uln=3, clinician="ild_causality"), "A clinician criterion has no max_x_uln"),
    ("or_baseline not bool", crit(analyte="alt", max_x_uln=3, or_baseline="yes"), "resume_when[0].or_baseline must be true or false"),
    ("text not a string", crit(analyte="alt", max_x_uln=3, text=3), "withheld.resume_when[0].text must be a string"),
    ("resume", base(withheld=held(resume="later")), "withheld.resume must be same, reduced or null, not 'later'"),
    ("resume dose", base(withheld=held(resume_dose_mg_bid=500)), "withheld.resume_dose_mg_bid must be 600, 450, 300 or null"),
    ("resume dose above dose", {"dose_mg_bid": 450, "withheld": held(resume_dose_mg_bid=600, resume="same")},
     "withheld.resume_dose_mg_bid (600) cannot be above dose_mg_bid (450)"),
    ("resume contradicts dose", base(withheld=held(resume="same")), "withheld.resume is 'same' but"),
    ("action", base(withheld=held(action="discontinue")), "withheld.action must be withhold, not 'discontinue'"),
    ("since near 9999", base(withheld=held(since="9999-12-31")), "withheld.since must be between 1900-01-01 and 9000-12-31"),
    ("since 9000-12-31T23:59+ fine, 9001 not", base(withheld=held(since="9001-01-01T00:00")), "withheld.since must be between"),
    ("since garbage", base(withheld=held(since="2026-02-30")), "withheld.since must be an ISO date-time"),
    ("since week date", base(withheld=held(since="2026-W01-1")), "withheld.since must be an ISO date-time"),
    # during_hold
    ("during_hold without withheld", base(during_hold=[{"labs": {}}]), "during_hold is given without withheld"),
    ("during_hold item", base(withheld=held(), during_hold=[5]), "during_hold[0] must be an object, not 5"),
    ("during_hold no labs", base(withheld=held(), during_hold=[{}]), "during_hold[0].labs is required"),
    ("during_hold lab", base(withheld=held(), during_hold=[{"labs": {"cpk": {"value": "2_000", "uln": 170}}}]),
     "during_hold[0].labs.cpk.value must be a number, not '2_000'"),
    ("during_hold lab semantics", base(withheld=held(), during_hold=[{"labs": {"cpk": {"value": 2000}}}]),
     "during_hold[0].labs.cpk.uln is required"),
    ("during_hold count", base(withheld=held(), during_hold=[{"labs": {}, "cpk_over_5x_uln_occurrences": -1}]),
     "during_hold[0].cpk_over_5x_uln_occurrences must be a whole number"),
    ("during_hold too many", base(withheld=held(), during_hold=[{"labs": {}}] * 101), "during_hold must have at most 100 items"),
    # unknown keys, at every level
    ("unknown top key", base(surprise=1), "Unknown key 'surprise'; known: dose_mg_bid"),
    ("unknown lab key", base(labs=lab(flag="H")), "labs.alt: Unknown key 'flag'; known: value, unit"),
    ("unknown baseline lab key", base(baseline=lab(flag="H")), "baseline.alt: Unknown key 'flag'"),
    ("unknown event", base(events={"fever": True}), "events: Unknown key 'fever'"),
    ("unknown unlisted key", base(events={"unlisted": [{"term": "rash", "grade": 3, "x": 1}]}),
     "events.unlisted[0]: Unknown key 'x'"),
    ("unknown history key", base(history={"cpk": 1}), "history: Unknown key 'cpk'"),
    ("unknown withheld key", base(withheld=held(until="never")), "withheld: Unknown key 'until'"),
    ("unknown criterion key", crit(analyte="alt", max_x_uln=3, within=2), "withheld.resume_when[0]: Unknown key 'within'"),
    ("unknown during_hold key", base(withheld=held(), during_hold=[{"labs": {}, "x": 1}]), "during_hold[0]: Unknown key 'x'"),
    ("unknown key in a during_hold lab", base(withheld=held(), during_hold=[{"labs": lab(x=1)}]),
     "during_hold[0].labs.alt: Unknown key 'x'"),
    ("unknown key with a newline", base(**{"a\nb": 1}), "Unknown key 'a\\nb'"),
    # nesting 100,000 deep, wherever it is put
    ("deep list as the case", deep(100_000), "The case must be a JSON object"),
    ("deep list as labs", base(labs=deep(100_000)), "labs must be an object, not a list"),
    ("deep object as a value", base(labs={"alt": {"value": deep(100_000, as_dict=True), "uln": 40}}),
     "labs.alt.value must be a number, not an object"),
    ("deep object under an unknown key", base(x=deep(100_000, as_dict=True)), "Unknown key 'x'"),
    ("deep list in resume_when", base(withheld=held(resume_when=deep(100_000))), "withheld.resume_when[0] must be an object"),
    ("deep object as an unlisted term", base(events={"unlisted": [{"term": deep(100_000, as_dict=True), "grade": 3}]}),
     "events.unlisted[0].term must be a string, not an object"),
]


@pytest.mark.parametrize(("why", "data", "message"), BAD, ids=[row[0] for row in BAD])
def test_bad_input_is_one_line_naming_the_field(why, data, message):
    with pytest.raises(InputError) as info:
        assess(case_from_json(data))
    text = str(info.value)
    assert message in text, why
    assert len(text.splitlines()) == 1 and text.isprintable(), text


def test_several_problems_are_counted_but_the_first_is_named():
    with pytest.raises(InputError, match=r"^dose_mg_bid is required \(2 more problems in the input\)\.$"):
        case_from_json({"labs": 1, "events": 2})


# --- good input --------------------------------------------------------------------------------


def test_a_full_case_builds_the_engine_case_exactly():
    data = {
        "dose_mg_bid": 450,
        "labs": {
            "alt": {"value": "2.4e2", "uln": 40, "unit": "U/L", "collected_at": "2026-02-10T08:30:00+01:00"},
            "total_bilirubin": {"value": "20.52", "uln": "20.52", "unit": "µmol/L"},
            "hemoglobin": {"value": 12, "lln": "12.0"},
            "heart_rate": {"value": 72},
        },
        "baseline": {"alt": {"value": "30", "uln": 40}},
        "events": {"bradycardia": None, "hemolysis_confirmed": None, "scar": "agep", "gi_perforation": False,
                   "unlisted": [{"term": "rash", "grade": 3}, {"term": "fatigue", "grade": 4}]},
        "history": {"cpk_over_5x_uln_occurrences": 1, "life_threatening_bradycardia_occurrences": 0},
        "regime": "eu",
        "starting_dose_mg_bid": 600,
    }
    case = case_from_json(json.loads(json.dumps(data), parse_float=str))
    assert case.dose_mg_bid == 450 and case.regime == "eu" and case.starting_dose_mg_bid == 600
    assert case.labs["alt"].value == 240 and case.labs["alt"].uln == 40
    assert case.labs["alt"].collected_at == datetime.fromisoformat("2026-02-10T08:30:00+01:00")
    assert case.labs["total_bilirubin"].value == case.labs["total_bilirubin"].uln == Fraction(12, 10)
    assert case.labs["hemoglobin"].lln == 12 and case.baseline["alt"].value == 30
    assert case.unlisted == (("rash", 3), ("fatigue", 4)) and case.scar == "agep"
    assert case.cpk_over_5x_uln_occurrences == 1 and case.withheld is None and case.during_hold == []
    out = assess(case)
    assert (out["action"], out["resume_dose_mg_bid"]) == ("withhold", 300)  # H1 at 450


def test_nulls_mean_the_defaults():
    case = case_from_json({"dose_mg_bid": 300, "labs": None, "baseline": None, "events": None, "history": None,
                           "withheld": None, "during_hold": None, "starting_dose_mg_bid": None})
    assert (case.labs, case.baseline, case.withheld, case.during_hold, case.regime) == ({}, {}, None, [], "us")


def test_numbers_are_exact_whatever_their_spelling():
    for spelling in (240, "240", "240.0", "2.4e2", "2.40E+2", "24000e-2", 240.0):
        assert case_from_json(base(labs={"alt": {"value": spelling, "uln": 40}})).labs["alt"].value == 240
    assert case_from_json(base(labs={"alt": {"value": "0.1", "uln": 40}})).labs["alt"].value == Fraction(1, 10)
    assert case_from_json(base(labs={"alt": {"value": "9" * 4 + ".5", "uln": 40}})).labs["alt"].value == Fraction(19999, 2)
    with pytest.raises(InputError, match="not a plausible reference limit"):
        case_from_json(base(labs={"alt": {"value": 50, "uln": "9" * 15}}))
    thirty = "1." + "0" * 28 + "1"  # 30 significant digits: the most accepted, exactly
    assert case_from_json(base(labs={"alt": {"value": thirty, "uln": 40}})).labs["alt"].value == Fraction(thirty)


def _withhold_output(**labs):
    data = base(labs={a: {"value": v, "uln": {"alt": 40, "cpk": 170}[a]} for a, v in labs.items()})
    out = assess(case_from_json(data))
    assert out["action"] == "withhold"
    return out


def test_the_engine_withhold_output_round_trips_as_withheld():
    out = _withhold_output(alt=240)
    # the whole withhold part of the output, through JSON as the command would read it
    withheld = {k: out[k] for k in ("action", "resume", "resume_dose_mg_bid", "resume_when")}
    text = json.dumps(base(labs={"alt": {"value": 130, "uln": 40}}, withheld={**withheld, "hold_changed": False}))
    case = case_from_json(json.loads(text, parse_float=str))
    assert case.withheld["resume_when"] == out["resume_when"]
    assert case.withheld["resume_dose_mg_bid"] == 450 and case.withheld["resume"] == "reduced"
    assert assess(case)["action"] == "withhold"  # 3.25× ULN: not yet recovered
    case = case_from_json(base(labs={"alt": {"value": 120, "uln": 40}}, withheld=withheld))
    assert assess(case)["action"] == "resume"  # exactly 3× ULN


@pytest.mark.parametrize(
    ("make", "labs"),
    [
        (lambda: assess(case_from_json(base(labs={"heart_rate": {"value": 48}}, events={"bradycardia": "symptomatic"}))),
         {"heart_rate": {"value": 64}}),
        (lambda: assess(case_from_json(base(labs={"hemoglobin": {"value": 9, "lln": 12}},
                                            events={"hemolysis_suspected": True}))), {}),
        (lambda: assess(case_from_json(base(events={"ild_under_investigation": True}))), {}),
    ],
    ids=["heart rate criterion", "clinician criterion (work-up)", "clinician criterion (ILD)"],
)
def test_every_kind_of_criterion_round_trips(make, labs):
    out = make()
    options = out.get("options") or [out]
    for option in options:
        withheld = {k: option[k] for k in ("action", "resume", "resume_dose_mg_bid", "resume_when")}
        case = case_from_json(json.loads(json.dumps(base(labs=labs, withheld=withheld)), parse_float=str))
        assert case.withheld["resume_when"] == option["resume_when"]
        assert assess(case)["action"] in ("withhold", "resume", "clinician_decision", "review")


def test_during_hold_snapshots_tighten_the_hold():
    out = _withhold_output(alt=240)
    withheld = {k: out[k] for k in ("action", "resume", "resume_dose_mg_bid", "resume_when")}
    data = base(labs={"alt": {"value": 80, "uln": 40, "collected_at": "2026-02-10T08:00"}},
                withheld={**withheld, "since": "2026-02-01"},
                during_hold=[{"labs": {"cpk": {"value": 2000, "uln": 170}}, "cpk_over_5x_uln_occurrences": 0}])
    case = case_from_json(data)
    assert case.during_hold == [Snapshot({"cpk": case.during_hold[0].labs["cpk"]}, 0)]
    assert case.during_hold[0].labs["cpk"].value == 2000
    assert case.withheld["since"] == datetime(2026, 2, 1)
    result = assess(case)
    assert result["action"] == "withhold" and result["hold_changed"] is True
    assert {c["analyte"] for c in result["resume_when"]} == {"alt", "cpk"}
    assert "HOLD-TIGHTENED" in [r["id"] for r in result["rules"]]


def test_boundary_dates_are_accepted():
    for moment in ("1900-01-01", "9000-12-31", "9000-12-31T23:59:59.999999", "2026-02-01T08:00Z",
                   "2026-02-01T08:00:00+05:30", "2026-02-01 08:00"):
        case = case_from_json(base(labs=lab(collected_at=moment), withheld=held(since=moment)))
        assert assess(case)["action"] in ("withhold", "resume")


# --- the commands never crash: fuzzing, in process ----------------------------------------------


def _run(command: str, payload: bytes) -> tuple[int, str, str]:
    """Run a JSON command in process on `payload` (a temp file); its exit code, stdout, stderr."""
    fd, path = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stderr(err):
            try:
                call_command(command, path, stdout=out)
            except SystemExit as exc:
                code = exc.code
        return code, out.getvalue(), err.getvalue()
    finally:
        os.unlink(path)


def _check(command: str, payload: bytes) -> None:
    code, out, err = _run(command, payload)
    assert "Traceback" not in out + err
    if code == 0:
        assert err == ""
        json.loads(out)
    else:
        assert code == 2, (code, err)
        assert out == ""
        assert err.startswith(f"{command}: ") and err.endswith("\n") and len(err.splitlines()) == 1, err
        assert err[:-1].isprintable(), err


RAW = "@@raw@@"
RAW_TOKENS = ["9" * 5000, "-" + "9" * 5000, "1e999999", "1e-999999", "NaN", "Infinity", "-Infinity", "1" + "0" * 400,
              "0." + "0" * 5000 + "1", "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000]

KEYS = ["dose_mg_bid", "labs", "baseline", "events", "history", "withheld", "regime", "starting_dose_mg_bid",
        "during_hold", "alt", "cpk", "hemoglobin", "heart_rate", "value", "uln", "lln", "unit", "collected_at",
        "resume_when", "resume", "resume_dose_mg_bid", "since", "analyte", "max_x_uln", "min", "clinician",
        "unlisted", "term", "grade", "treatment_start", "today", "grace_days", "due_soon_days", "last_tests", "lft"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**40), 10**40), st.floats(),
    st.text(max_size=20),
    st.sampled_from(["2_40", "240", "2.4e2", "1e999999", "nan", "-0", "0", "9000-12-31", "9999-12-31",
                     "0001-01-01", "2026-02-29", "2026-02-01T08:00", "µmol/L", "U/L", "same", "reduced",
                     "withhold", "symptomatic", "ild_causality", "\ud800", "a\u2028b", "x\ny", 600, 450, 300, 3.0]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)


def _encode(value: Any, raw: str | None = None, ascii_only: bool = False) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only)
    if raw is not None:
        text = text.replace(json.dumps(RAW), raw)
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become bytes that are not UTF-8


def _valid_assess_case() -> dict[str, Any]:
    crit_alt = {"analyte": "alt", "max_x_uln": 3.0, "or_baseline": True, "text": "ALT ≤ 3× ULN"}
    return {
        "dose_mg_bid": 600,
        "labs": {"alt": {"value": "80", "uln": 40, "unit": "U/L", "collected_at": "2026-02-10T08:00"},
                 "cpk": {"value": 900, "uln": "170"}, "hemoglobin": {"value": "9.5", "lln": 12, "unit": "g/dL"},
                 "heart_rate": {"value": 58}},
        "baseline": {"alt": {"value": 30, "uln": 40}},
        "events": {"bradycardia": "symptomatic", "contributing_medication": True, "hemolysis_suspected": True,
                   "hemolysis_confirmed": None, "scar": None, "unlisted": [{"term": "rash", "grade": 3}]},
        "history": {"cpk_over_5x_uln_occurrences": 0, "life_threatening_bradycardia_occurrences": 0},
        "withheld": {"action": "withhold", "resume": "reduced", "resume_dose_mg_bid": 450, "since": "2026-02-01",
                     "resume_when": [crit_alt, {"analyte": "heart_rate", "min": 60, "or_asymptomatic": True, "text": "HR"},
                                     {"analyte": None, "clinician": "hemolysis_workup", "text": "work-up"}]},
        "during_hold": [{"labs": {"cpk": {"value": 2000, "uln": 170}}, "cpk_over_5x_uln_occurrences": 0}],
        "regime": "us",
        "starting_dose_mg_bid": 600,
    }


def _valid_due_case() -> dict[str, Any]:
    return {"treatment_start": "2026-01-05", "today": "2026-02-20", "grace_days": 0, "due_soon_days": 3,
            "last_tests": {"lft": "2026-02-02", "cpk": "2026-01-19"}}


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path in a JSON value (containers too: replacing one replaces its subtree)."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _leaves(v, (*path, i))
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _drop(value: Any, path: tuple) -> Any:
    if len(path) == 1:
        copy = dict(value) if isinstance(value, dict) else list(value)
        del copy[path[0]]
        return copy
    return _replace(value, path[:1], _drop(value[path[0]], path[1:]))


@st.composite
def mutations(draw, valid):
    """A valid case with one part replaced by a random value or a raw JSON token, or
    dropped, or a key added."""
    case = valid()
    paths = _leaves(case)
    path = draw(st.sampled_from(paths))
    how = draw(st.sampled_from(["value", "value", "raw", "drop", "add"]))
    if how == "value":
        return _encode(_replace(case, path, draw(json_values)))
    if how == "raw":
        return _encode(_replace(case, path, RAW), draw(st.sampled_from(RAW_TOKENS)))
    if how == "drop" and path:
        return _encode(_drop(case, path))
    target = case
    for p in path:
        target = target[p]
    if isinstance(target, dict):
        target = {**target, draw(st.sampled_from(KEYS) | st.text(max_size=5)): draw(json_values)}
        return _encode(_replace(case, path, target))
    return _encode(case)


numbers = st.one_of(st.integers(0, 10**6), st.decimals(0, 10**6, places=3).map(str),
                    st.floats(0, 10**6, allow_nan=False, allow_infinity=False).map(lambda f: format(f, ".6g")))
moments = st.datetimes(datetime(1900, 1, 2), datetime(9000, 12, 30)).map(lambda d: d.isoformat(timespec="seconds"))
moments = moments | moments.map(lambda m: m + "+05:30") | st.dates().filter(
    lambda d: 1900 <= d.year <= 9000).map(str)
PLAUSIBLE = {"alt": (0, 20000), "ast": (0, 20000), "total_bilirubin": (0, 60), "creatinine": (0, 30),
             "cpk": (0, 500000), "hemoglobin": (1, 25), "heart_rate": (20, 250), "systolic_bp": (40, 300),
             "diastolic_bp": (20, 200), "alectinib_cmin": (0, 5000)}


@st.composite
def valid_labs(draw):
    labs = {}
    for code in draw(st.lists(st.sampled_from(sorted(PLAUSIBLE)), unique=True, max_size=5)):
        low, high = PLAUSIBLE[code]
        item = {"value": str(draw(st.decimals(low, high, places=2)))}
        analyte = ANALYTES[code]
        low_limit, high_limit = analyte.limit_range  # plausible reference limits (design bounds)
        if analyte.has_uln:
            item["uln"] = str(draw(st.decimals(low_limit, high_limit, places=2)))
        elif draw(st.booleans()):
            item["uln"] = str(draw(st.decimals("0.01", 10**6, places=2)))  # not used by this analyte
        if analyte.has_lln:
            item["lln"] = str(draw(st.decimals(low_limit, high_limit, places=2)))
        elif draw(st.booleans()):
            item["lln"] = draw(numbers.filter(lambda n: float(n) >= 0.01))
        if draw(st.booleans()):
            item["collected_at"] = draw(moments)
        labs[code] = item
    return labs


criteria = st.one_of(
    st.builds(lambda a, m, b: {"analyte": a, "max_x_uln": m, "or_baseline": b, "text": "t"},
              st.sampled_from(["alt", "ast", "total_bilirubin", "creatinine", "cpk"]),
              st.sampled_from([1.5, 2.5, 3.0, "3", 10]), st.booleans()),
    st.builds(lambda m, b: {"analyte": "heart_rate", "min": m, "or_asymptomatic": b, "text": "t"},
              st.integers(20, 250), st.booleans()),
    st.builds(lambda f: {"analyte": None, "clinician": f, "text": "t"},
              st.sampled_from(["ild_causality", "hemolysis_workup", "hemolysis_resolved", True])),
)


@st.composite
def valid_assess_cases(draw):
    dose = draw(st.sampled_from([600, 450, 300]))
    data = {"dose_mg_bid": dose, "labs": draw(valid_labs()), "baseline": draw(valid_labs()),
            "events": {
                "ild": draw(st.booleans()), "ild_under_investigation": draw(st.booleans()),
                "ild_other_cause": draw(st.booleans()),
                "bradycardia": draw(st.sampled_from([None, "asymptomatic", "symptomatic", "life_threatening"])),
                "contributing_medication": draw(st.booleans()), "contributing_medication_adjusted": draw(st.booleans()),
                "hemolysis_suspected": draw(st.booleans()), "hemolysis_confirmed": draw(st.sampled_from([None, True, False])),
                "hemolysis_resolved": draw(st.booleans()), "cholestasis_or_hemolysis": draw(st.booleans()),
                "gi_perforation": draw(st.booleans()), "scar": draw(st.sampled_from([None, "sjs", "ten", "dress", "agep"])),
                "unlisted": draw(st.lists(st.builds(lambda t, g: {"term": t, "grade": g},
                                                    st.text(min_size=1, max_size=80).filter(str.strip),
                                                    st.integers(3, 5)),
                                          max_size=2))},
            "history": {"cpk_over_5x_uln_occurrences": draw(st.integers(0, 1000)),
                        "life_threatening_bradycardia_occurrences": draw(st.integers(0, 1000))},
            "regime": draw(st.sampled_from(["us", "eu", "jp_adjuvant", "jp_advanced"])),
            "starting_dose_mg_bid": draw(st.sampled_from([None, 600, 450, 300]))}
    if draw(st.booleans()):
        resume_dose = draw(st.sampled_from([None] + [d for d in (600, 450, 300) if d <= dose]))
        withheld = {"action": "withhold", "resume_dose_mg_bid": resume_dose,
                    "resume": None if resume_dose is None else ("same" if resume_dose == dose else "reduced"),
                    "resume_when": draw(st.lists(criteria, max_size=4))}
        if draw(st.booleans()):
            withheld["since"] = draw(moments)
        data["withheld"] = withheld
        data["during_hold"] = draw(st.lists(st.builds(lambda labs, n: {"labs": labs, "cpk_over_5x_uln_occurrences": n},
                                                      valid_labs(), st.integers(0, 3)), max_size=2))
    return data


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COMMANDS = ["assess", "monitoring_due"]


def test_the_valid_fuzz_seeds_succeed():
    for command, valid in (("assess", _valid_assess_case), ("monitoring_due", _valid_due_case)):
        code, out, err = _run(command, _encode(valid()))
        assert (code, err) == (0, ""), err
        assert json.loads(out)


@pytest.mark.parametrize("command", COMMANDS)
@FUZZ
@given(value=json_values, ascii_only=st.booleans())
def test_fuzz_random_json_never_crashes(command, value, ascii_only):
    _check(command, _encode(value, ascii_only=ascii_only))


@pytest.mark.parametrize(("command", "valid"), [("assess", _valid_assess_case), ("monitoring_due", _valid_due_case)])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_valid_case_never_crashes(command, valid, data):
    _check(command, data.draw(mutations(valid)))


@FUZZ
@given(data=valid_assess_cases())
def test_fuzz_any_valid_case_is_assessed(data):
    code, out, err = _run("assess", _encode(data, ascii_only=True))
    assert (code, err) == (0, ""), err
    assert json.loads(out)["action"] in ("continue", "withhold", "resume", "discontinue", "clinician_decision", "review")


@pytest.mark.parametrize("command", COMMANDS)
@FUZZ
@given(payload=st.binary(max_size=200) | st.binary(min_size=1, max_size=3).map(lambda b: b'{"today": "' + b + b'"}'))
def test_fuzz_random_bytes_never_crash(command, payload):
    _check(command, payload)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"[" * 100_000, b'{"a":' * 100_000, b"9" * 5000, b"-" + b"9" * 5000,
     b"NaN", b'"\\ud800"', b"{}" * 3, b"\x00", "\u2028".encode(), b'{"\\u2028": 1}', b"1" * 1_000_001],
    ids=["empty", "utf16-bom", "utf8-bom", "deep-list", "deep-object", "5000-digits", "neg-5000-digits", "nan",
         "lone-surrogate", "trailing", "nul", "line-separator", "separator-key", "over-1MB"],
)
def test_edge_inputs_never_crash(command, payload):
    _check(command, payload)


@pytest.mark.parametrize("command", COMMANDS)
def test_duplicate_keys_are_refused(command):
    code, out, err = _run(command, b'{"dose_mg_bid": 600, "today": "2026-02-20", "today": "2026-02-21"}')
    assert (code, out, err) == (2, "", f"{command}: malformed JSON: duplicate key 'today'.\n")


def test_stdin_is_read_as_bytes(monkeypatch):
    for payload in (b"\x9d\xff", b"[" * 100_000):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload), encoding="utf-8"))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
            call_command("assess", "-", stdout=io.StringIO())
        assert info.value.code == 2 and len(err.getvalue().splitlines()) == 1


# --- a few real processes ----------------------------------------------------------------------


def _process(command: str, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", command, "-"], input=stdin, cwd=ROOT, capture_output=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "VAR_DIR": "/tmp/assess-test"})


@pytest.mark.parametrize(
    ("command", "stdin", "message"),
    [
        ("assess", b"[" * 100_000, "assess: malformed JSON: it is nested too deeply."),
        ("assess", b'{"dose_mg_bid": 600, "labs": {"alt": {"value": ' + b"9" * 5000 + b', "uln": 40}}}',
         "assess: labs.alt.value has too many digits"),
        ("assess", b'{"dose_mg_bid": 600, "labs": {"alt": {"value": "2_40", "uln": 40}}}',
         "assess: labs.alt.value must be a number, not '2_40'."),
        ("assess", bytes(range(256)) * 4, "assess: the input is not UTF-8 text"),
        ("monitoring_due", b'{"treatment_start": "9999-12-30", "today": "9999-12-31"}',
         "monitoring_due: treatment_start must be between 1900-01-01 and 9000-12-31"),
    ],
    ids=["deep", "5000-digits", "underscore", "bytes", "due-9999"],
)
def test_real_process_exits_2_with_one_line(command, stdin, message):
    result = _process(command, stdin)
    err = result.stderr.decode("utf-8")
    assert result.returncode == 2, err
    assert result.stdout == b""
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.endswith("\n")
    assert err.startswith(message), err
