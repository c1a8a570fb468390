"""Every × ULN threshold, exactly at it, one step below and one step above, in every unit
the app accepts: grade, × ULN and the engine's action do not depend on the unit.

Sources: ../shared/clinical-reference.md §4 conventions ("> k × ULN" is strict, exact
arithmetic, A7), §4.1, §4.3, §4.5 (rule thresholds) and §8.1–§8.3 (CTCAE bands). Unit
factors: µkat/L × 60 = U/L (definition); bilirubin 17.1 and creatinine 88.4 µmol/L per
mg/dL (conventional factors, protocols.analytes). No database.
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.analytes import ratio_to_decimal
from protocols.engine import Case, assess
from protocols.labs import grade_lab, lab_from_reported

# ULN of each analyte in each accepted unit: the same limit, written as a lab would.
ULNS = {
    "alt": {"U/L": D("40"), "IU/L": D("40"), "µkat/L": D("0.6")},  # 0.6 µkat/L = 36 U/L
    "ast": {"U/L": D("40"), "IU/L": D("40"), "µkat/L": D("0.6")},
    "total_bilirubin": {"mg/dL": D("1.2"), "µmol/L": D("20.5")},
    "creatinine": {"mg/dL": D("1.1"), "µmol/L": D("97")},
    "cpk": {"U/L": D("170"), "IU/L": D("170"), "µkat/L": D("2.9")},
}

# CTCAE v5.0 lower bounds of grades 1–4 as multiples of the ULN (baseline normal), §8.1–§8.3.
BANDS = {
    "alt": (1, 3, 5, 20), "ast": (1, 3, 5, 20),
    "total_bilirubin": (1, D("1.5"), 3, 10),
    "creatinine": (1, D("1.5"), 3, 6),
    "cpk": (1, D("2.5"), 5, 10),
}
# The label's own thresholds (§4.1 H1/H2/H3 and recovery, §4.3 recovery, §4.5 C1/C2/recovery).
RULE_THRESHOLDS = {
    "alt": (3, 5), "ast": (3, 5), "total_bilirubin": (D("1.5"), 2, 3), "creatinine": (D("1.5"),),
    "cpk": (D("2.5"), 5, 10),
}
STEP = D("0.01")  # one step of the reported value, in the reported unit


def expected_grade(analyte: str, multiple: Fraction) -> int:
    return sum(1 for bound in BANDS[analyte] if multiple > Fraction(bound))


def boundary_rows():
    for analyte, units in ULNS.items():
        thresholds = sorted({Fraction(k) for k in BANDS[analyte] + RULE_THRESHOLDS[analyte]})
        for unit, uln in units.items():
            for k in thresholds:
                at = D(str(k.numerator)) / D(str(k.denominator)) * uln
                for where, value in (("below", at - STEP), ("at", at), ("above", at + STEP)):
                    yield pytest.param(analyte, unit, uln, k, value, where,
                                       id=f"{analyte}-{unit}-{float(k)}x-{where}")


@pytest.mark.parametrize(("analyte", "unit", "uln", "k", "value", "where"), list(boundary_rows()))
def test_grade_and_multiple_at_every_threshold_in_every_unit(analyte, unit, uln, k, value, where):
    lab = lab_from_reported(analyte, value, unit, uln=uln)
    grading = grade_lab(analyte, lab)
    multiple = Fraction(value) / Fraction(uln)  # the unit cancels
    assert grading.x_uln == multiple
    assert grading.grade == expected_grade(analyte, multiple)
    if where == "at":
        assert grading.x_uln == k and lab.exceeds(k) is False and lab.within(k) is True
    elif where == "above":
        assert lab.exceeds(k) is True
        assert ratio_to_decimal(grading.x_uln) > D(str(float(k))), "the stored multiple stays above the threshold"
    else:
        assert lab.exceeds(k) is False
        assert ratio_to_decimal(grading.x_uln) <= D(str(float(k))), "the stored multiple never shows above it"


# The engine at the boundaries that change the action, in every unit (§4.1, §4.3, §4.5).
def _lab(analyte, unit, multiple, *, step=D(0)):
    uln = ULNS[analyte][unit]
    return lab_from_reported(analyte, D(str(multiple)) * uln + step, unit, uln=uln)


ENGINE_ROWS = [
    # (what, labs builder, action, resume dose, rules)
    ("§4.1 H2 needs bilirubin > 2×: exactly 2.0× with ALT > 5× is H1's withhold, never discontinue",
     lambda u, v: {"alt": _lab("alt", u, 6), "total_bilirubin": _lab("total_bilirubin", v, 2)}, "withhold", 450, ["H1"]),
    ("§4.1 H2 fires one step above 2.0×",
     lambda u, v: {"alt": _lab("alt", u, 6), "total_bilirubin": _lab("total_bilirubin", v, 2, step=STEP)},
     "discontinue", None, ["H2"]),
    ("§4.1 H1 at exactly 5.0× does not fire",
     lambda u, v: {"alt": _lab("alt", u, 5), "total_bilirubin": _lab("total_bilirubin", v, "0.5")}, "continue", None, []),
    ("§4.1 H3 at exactly 3.0× bilirubin does not fire",
     lambda u, v: {"total_bilirubin": _lab("total_bilirubin", v, 3)}, "continue", None, []),
    ("§4.1 H3 one step above 3.0×",
     lambda u, v: {"total_bilirubin": _lab("total_bilirubin", v, 3, step=STEP)}, "withhold", 450, ["H3"]),
    ("§4.3 creatinine exactly 6.0× is grade 3: withhold, never grade 4's discontinuation",
     lambda u, v: {"creatinine": _lab("creatinine", v, 6)}, "withhold", 450, ["R3"]),
    ("§4.3 creatinine one step above 6.0× is grade 4: discontinue",
     lambda u, v: {"creatinine": _lab("creatinine", v, 6, step=STEP)}, "discontinue", None, ["R4"]),
    ("§4.3 creatinine exactly 3.0× is grade 2: continue",
     lambda u, v: {"creatinine": _lab("creatinine", v, 3)}, "continue", None, []),
    ("§4.5 CPK exactly 5.0× does not fire",
     lambda u, v: {"cpk": _lab("cpk", u, 5)}, "continue", None, []),
    ("§4.5 CPK exactly 10.0× is C1 (same dose)",
     lambda u, v: {"cpk": _lab("cpk", u, 10)}, "withhold", 600, ["C1"]),
    ("§4.5 CPK one step above 10× is C2 (reduced)",
     lambda u, v: {"cpk": _lab("cpk", u, 10, step=STEP)}, "withhold", 450, ["C2"]),
]
UNIT_PAIRS = [("U/L", "mg/dL"), ("IU/L", "µmol/L"), ("µkat/L", "µmol/L"), ("µkat/L", "mg/dL")]


@pytest.mark.parametrize(("enzyme_unit", "si_unit"), UNIT_PAIRS)
@pytest.mark.parametrize(("what", "labs", "action", "dose", "rules"), ENGINE_ROWS, ids=[r[0][:60] for r in ENGINE_ROWS])
def test_engine_actions_at_boundaries_in_every_unit(what, labs, action, dose, rules, enzyme_unit, si_unit):
    out = assess(Case(dose_mg_bid=600, labs=labs(enzyme_unit, si_unit)))
    assert out["action"] == action, what
    assert out["resume_dose_mg_bid"] == dose
    assert [r["id"] for r in out["rules"] if r["id"] != "FLOOR"] == rules


RECOVERY_ROWS = [
    # (criterion analyte, multiple that exactly meets "≤ k × ULN", k)
    ("alt", 3, "H1 recovery ≤ 3× ULN (§4.1)"),
    ("total_bilirubin", D("1.5"), "H3 recovery ≤ 1.5× ULN (§4.1)"),
    ("creatinine", D("1.5"), "R3 recovery ≤ 1.5× ULN (§4.3)"),
    ("cpk", D("2.5"), "C recovery ≤ 2.5× ULN (§4.5)"),
]


@pytest.mark.parametrize(("analyte", "k", "what"), RECOVERY_ROWS, ids=[r[2] for r in RECOVERY_ROWS])
@pytest.mark.parametrize("unit_index", [0, 1])
def test_recovery_at_exactly_the_multiple_counts_in_every_unit(analyte, k, what, unit_index):
    unit = list(ULNS[analyte])[min(unit_index, len(ULNS[analyte]) - 1)]
    if unit_index == 1 and analyte in ("alt", "cpk"):
        unit = "µkat/L"
    criterion = {"analyte": analyte, "max_x_uln": float(k), "or_baseline": True, "text": what}
    held = {"resume": "reduced", "resume_dose_mg_bid": 450, "resume_when": [criterion]}
    at = assess(Case(dose_mg_bid=600, labs={analyte: _lab(analyte, unit, k)}, withheld=held))
    above = assess(Case(dose_mg_bid=600, labs={analyte: _lab(analyte, unit, k, step=STEP)}, withheld=held))
    assert at["action"] == "resume" and at["resume_dose_mg_bid"] == 450, what
    assert above["action"] == "withhold", what


# --- property: conventional and SI units give the same answer ---------------------------------

decimals = st.decimals(min_value=D("0.01"), max_value=D("60"), places=2)


@st.composite
def paired_cases(draw):
    """The same results twice: conventional units, and SI units obtained by exact
    multiplication (mg/dL × 17.1 or × 88.4; U/L = µkat/L × 60)."""
    conventional, si = {}, {}
    for analyte, factor in (("total_bilirubin", D("17.1")), ("creatinine", D("88.4"))):
        if draw(st.booleans()):
            uln = draw(st.decimals(min_value=D("0.3"), max_value=D("3"), places=2))
            value = draw(st.one_of(decimals, st.sampled_from([uln * k for k in (D("1.5"), 2, 3, 6, 10)])))
            conventional[analyte] = lab_from_reported(analyte, value, "mg/dL", uln=uln)
            si[analyte] = lab_from_reported(analyte, value * factor, "µmol/L", uln=uln * factor)
    for analyte in ("alt", "ast", "cpk"):
        if draw(st.booleans()):
            uln = draw(st.decimals(min_value=D("0.3"), max_value=D("5"), places=2))  # µkat/L
            value = draw(st.one_of(st.decimals(min_value=0, max_value=D("150"), places=2),
                                   st.sampled_from([uln * k for k in (D("2.5"), 3, 5, 10, 20)])))
            si[analyte] = lab_from_reported(analyte, value, "µkat/L", uln=uln)
            conventional[analyte] = lab_from_reported(analyte, value * 60, "U/L", uln=uln * 60)
    if draw(st.booleans()):
        hb = draw(st.decimals(min_value=D("5"), max_value=D("16"), places=1))
        conventional["hemoglobin"] = lab_from_reported("hemoglobin", hb, "g/dL", lln=D("12"))
        si["hemoglobin"] = lab_from_reported("hemoglobin", hb * 10, "g/L", lln=D("120"))
    dose = draw(st.sampled_from([600, 450, 300]))
    occurrences = draw(st.integers(0, 2))
    return dose, occurrences, conventional, si


@settings(max_examples=400, deadline=None)
@given(paired_cases())
def test_grades_and_actions_are_identical_in_conventional_and_si_units(pair):
    dose, occurrences, conventional, si = pair
    a = assess(Case(dose_mg_bid=dose, labs=conventional, cpk_over_5x_uln_occurrences=occurrences))
    b = assess(Case(dose_mg_bid=dose, labs=si, cpk_over_5x_uln_occurrences=occurrences))
    assert a == b
    for analyte in conventional:
        ga, gb = grade_lab(analyte, conventional[analyte]), grade_lab(analyte, si[analyte])
        assert (ga.grade, ga.x_uln) == (gb.grade, gb.x_uln)
