"""CTCAE v5.0 grading of laboratory values. Pure Python, exact rational arithmetic.

Source: ../shared/clinical-reference.md §8 (S9). Ranges are "greater than the lower
bound, up to and including the upper bound" unless the table says otherwise (§8), and
multiples are compared exactly (§4, A7): a value of exactly 3.0 × ULN is Grade 1 for
ALT, not Grade 2.

Heart rate, blood pressure and the alectinib trough have no numeric CTCAE grade here:
sinus bradycardia is graded from symptoms, never from the rate alone (§8.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from protocols.errors import InputError

CTCAE_VERSION = "CTCAE v5.0"

# Every multiple is exact: inputs become Fractions (a Decimal converts exactly), so
# 3 × 1.2 is 3.6 and never 3.5999… (reference §4, A7).
D = Fraction
Number = Fraction | Decimal | int


@dataclass(frozen=True)
class Grading:
    grade: int | None  # None: no numeric grade for this analyte
    x_uln: Fraction | None  # value / ULN, exact, when the analyte has a ULN
    basis: str  # which table row was used, shown to the user
    version: str = CTCAE_VERSION


def _band(multiple: Fraction, bounds: tuple[Fraction, Fraction, Fraction, Fraction]) -> int:
    """Grade from a multiple and the four lower bounds (each exclusive) of Grades 1–4."""
    grade = 0
    for i, bound in enumerate(bounds, start=1):
        if multiple > bound:
            grade = i
    return grade


def _need(value: Number | None, what: str) -> Fraction:
    if value is None:
        raise InputError(f"{what} is required to grade this result.")
    if value <= 0:
        raise InputError(f"{what} must be greater than zero.")
    return Fraction(value)


def _exact(value: Number | None) -> Fraction | None:
    return None if value is None else Fraction(value)


def grade_aminotransferase(value: Number, uln: Number, baseline: Number | None = None) -> Grading:
    """ALT or AST increased, §8.1 (same table for both)."""
    uln, value, baseline = _need(uln, "ULN"), Fraction(value), _exact(baseline)
    x_uln = value / uln
    if baseline is not None and baseline > uln:
        x_bl = value / baseline
        # Baseline abnormal: Grade 1 is 1.5–3.0 × BL, inclusive at 1.5 (no ">" in the table).
        grade = 0 if x_bl < D("1.5") else max(1, _band(x_bl, (D("1.5"), D(3), D(5), D(20))))
        return Grading(grade, x_uln, "§8.1 baseline abnormal (× baseline)")
    grade = _band(x_uln, (D(1), D(3), D(5), D(20)))
    return Grading(grade, x_uln, "§8.1 baseline normal (× ULN)")


def grade_bilirubin(value: Number, uln: Number, baseline: Number | None = None) -> Grading:
    """Blood bilirubin increased, §8.1."""
    uln, value, baseline = _need(uln, "ULN"), Fraction(value), _exact(baseline)
    x_uln = value / uln
    if baseline is not None and baseline > uln:
        grade = _band(value / baseline, (D(1), D("1.5"), D(3), D(10)))
        return Grading(grade, x_uln, "§8.1 baseline abnormal (× baseline)")
    return Grading(_band(x_uln, (D(1), D("1.5"), D(3), D(10))), x_uln, "§8.1 baseline normal (× ULN)")


def grade_creatinine(value: Number, uln: Number, baseline: Number | None = None) -> Grading:
    """Creatinine increased, §8.2: the higher of the ULN and the baseline criteria."""
    uln, value, baseline = _need(uln, "ULN"), Fraction(value), _exact(baseline)
    x_uln = value / uln
    by_uln = _band(x_uln, (D(1), D("1.5"), D(3), D(6)))
    by_bl = 0
    if baseline is not None and baseline > 0:
        x_bl = value / baseline
        # v5 has baseline arms for Grades 2 and 3 only (">1.5–3.0 × BL", "> 3.0 × BL").
        by_bl = 3 if x_bl > D(3) else 2 if x_bl > D("1.5") else 0
    basis = "§8.2 max of × ULN and × baseline" if baseline else "§8.2 × ULN"
    return Grading(max(by_uln, by_bl), x_uln, basis)


def grade_cpk(value: Number, uln: Number, baseline: Number | None = None) -> Grading:
    """CPK increased, §8.3."""
    uln, value, baseline = _need(uln, "ULN"), Fraction(value), _exact(baseline)
    x_uln = value / uln
    return Grading(_band(x_uln, (D(1), D("2.5"), D(5), D(10))), x_uln, "§8.3 × ULN")


def grade_anemia(value: Number, lln: Number, baseline: Number | None = None) -> Grading:
    """Anemia from hemoglobin in g/dL, §8.4. There is no numeric Grade 4 in v5.
    Exactly 10.0 g/dL is Grade 1; exactly 8.0 g/dL is Grade 2."""
    lln, value = _need(lln, "LLN"), Fraction(value)
    if value < D(8):
        grade = 3
    elif value < D(10):
        grade = 2
    elif value < lln:
        grade = 1
    else:
        grade = 0
    return Grading(grade, None, "§8.4 g/dL")


_GRADERS = {
    "alt": grade_aminotransferase,
    "ast": grade_aminotransferase,
    "total_bilirubin": grade_bilirubin,
    "creatinine": grade_creatinine,
    "cpk": grade_cpk,
    "hemoglobin": grade_anemia,
}


def grade(
    analyte: str,
    value: Number,
    *,
    uln: Number | None = None,
    lln: Number | None = None,
    baseline: Number | None = None,
) -> Grading:
    """Grade one result (value and limits in the canonical unit of the analyte, exact)."""
    grader = _GRADERS.get(analyte)
    if grader is None:
        x_uln = Fraction(value) / Fraction(uln) if uln else None
        return Grading(None, x_uln, "no numeric CTCAE grade (§8.5)" if analyte == "heart_rate" else "not graded")
    limit = lln if analyte == "hemoglobin" else uln
    return grader(value, limit, baseline)  # type: ignore[arg-type]
