"""CTCAE v5.0 grading, straight from ../shared/clinical-reference.md §8.

No database: these tests fail if grading ever touches one.
"""

from decimal import Decimal as D

import pytest

from protocols.ctcae import grade
from protocols.errors import InputError

# (analyte, value, ULN or LLN, baseline, expected grade, reference row)
CASES = [
    # §8.1 ALT, baseline normal: G1 > ULN–3.0×, G2 > 3.0–5.0×, G3 > 5.0–20.0×, G4 > 20.0×
    ("alt", "40", "40", None, 0, "§8.1 exactly ULN is normal"),
    ("alt", "40.01", "40", None, 1, "§8.1 just above ULN"),
    ("alt", "120", "40", None, 1, "§8.1 exactly 3.0× ULN is still G1"),
    ("alt", "120.01", "40", None, 2, "§8.1 just above 3.0×"),
    ("alt", "200", "40", None, 2, "§8.1 exactly 5.0× ULN is still G2"),
    ("alt", "200.01", "40", None, 3, "§8.1 just above 5.0×"),
    ("alt", "800", "40", None, 3, "§8.1 exactly 20.0× is G3"),
    ("alt", "800.1", "40", None, 4, "§8.1 above 20.0×"),
    ("ast", "120", "40", None, 1, "§8.1 AST same table, 3.0× boundary"),
    ("ast", "200", "40", None, 2, "§8.1 AST 5.0× boundary"),
    ("ast", "201", "40", None, 3, "§8.1 AST above 5.0×"),
    ("alt", "30", "40", "35", 0, "§8.1 normal baseline uses × ULN"),
    # §8.1 ALT, baseline abnormal (BL > ULN): G1 1.5–3.0× BL, G2 > 3.0–5.0×, G3 > 5.0–20.0×, G4 > 20.0×
    ("alt", "70", "40", "50", 0, "§8.1 BL abnormal: 1.4× BL is below Grade 1"),
    ("alt", "75", "40", "50", 1, "§8.1 BL abnormal: exactly 1.5× BL is G1 (inclusive)"),
    ("alt", "150", "40", "50", 1, "§8.1 BL abnormal: exactly 3.0× BL is G1"),
    ("alt", "150.5", "40", "50", 2, "§8.1 BL abnormal: above 3.0× BL"),
    ("alt", "250", "40", "50", 2, "§8.1 BL abnormal: exactly 5.0× BL"),
    ("alt", "251", "40", "50", 3, "§8.1 BL abnormal: above 5.0× BL"),
    ("alt", "1001", "40", "50", 4, "§8.1 BL abnormal: above 20× BL"),
    # §8.1 bilirubin, baseline normal: G1 > ULN–1.5×, G2 > 1.5–3.0×, G3 > 3.0–10.0×, G4 > 10.0×
    ("total_bilirubin", "1.2", "1.2", None, 0, "§8.1 bilirubin exactly ULN"),
    ("total_bilirubin", "1.8", "1.2", None, 1, "§8.1 exactly 1.5× ULN is G1"),
    ("total_bilirubin", "3.6", "1.2", None, 2, "§8.1 exactly 3.0× ULN is G2 (the 3*1.2 float trap, §4)"),
    ("total_bilirubin", "3.61", "1.2", None, 3, "§8.1 above 3.0×"),
    ("total_bilirubin", "12", "1.2", None, 3, "§8.1 exactly 10× is G3"),
    ("total_bilirubin", "12.1", "1.2", None, 4, "§8.1 above 10×"),
    # §8.1 bilirubin, baseline abnormal: G1 > 1.0–1.5× BL, G2 > 1.5–3.0×, G3 > 3.0–10.0×, G4 > 10.0×
    ("total_bilirubin", "1.5", "1.2", "1.5", 0, "§8.1 BL abnormal: at baseline"),
    ("total_bilirubin", "2.25", "1.2", "1.5", 1, "§8.1 BL abnormal: exactly 1.5× BL"),
    ("total_bilirubin", "4.5", "1.2", "1.5", 2, "§8.1 BL abnormal: exactly 3.0× BL"),
    ("total_bilirubin", "4.6", "1.2", "1.5", 3, "§8.1 BL abnormal: above 3.0× BL"),
    # §8.2 creatinine: G1 > ULN–1.5× ULN; G2 > 1.5–3.0× BL or ULN; G3 > 3.0× BL or > 3.0–6.0× ULN; G4 > 6.0× ULN
    ("creatinine", "1.1", "1.1", None, 0, "§8.2 at ULN"),
    ("creatinine", "1.65", "1.1", None, 1, "§8.2 exactly 1.5× ULN is G1"),
    ("creatinine", "3.3", "1.1", None, 2, "§8.2 exactly 3.0× ULN is G2"),
    ("creatinine", "3.31", "1.1", None, 3, "§8.2 above 3.0× ULN"),
    ("creatinine", "6.6", "1.1", None, 3, "§8.2 exactly 6.0× ULN is G3"),
    ("creatinine", "6.7", "1.1", None, 4, "§8.2 above 6.0× ULN"),
    ("creatinine", "1.0", "1.1", "0.6", 2, "§8.2 1.67× BL is G2 while under ULN (max of criteria)"),
    ("creatinine", "1.9", "1.1", "0.6", 3, "§8.2 3.17× BL is G3 though 1.7× ULN is G2"),
    ("creatinine", "0.9", "1.1", "0.6", 0, "§8.2 1.5× BL exactly is not > 1.5"),
    # §8.3 CPK: G1 > ULN–2.5×, G2 > 2.5–5.0×, G3 > 5.0–10.0×, G4 > 10.0×
    ("cpk", "425", "170", None, 1, "§8.3 exactly 2.5× is G1"),
    ("cpk", "850", "170", None, 2, "§8.3 exactly 5.0× is G2"),
    ("cpk", "851", "170", None, 3, "§8.3 above 5.0×"),
    ("cpk", "1700", "170", None, 3, "§8.3 exactly 10× is G3"),
    ("cpk", "1701", "170", None, 4, "§8.3 above 10×"),
    # §8.4 anemia (g/dL): G1 < LLN–10.0, G2 < 10.0–8.0, G3 < 8.0; no numeric G4
    ("hemoglobin", "12.0", "12.0", None, 0, "§8.4 at LLN"),
    ("hemoglobin", "10.0", "12.0", None, 1, "§8.4 exactly 10.0 is G1"),
    ("hemoglobin", "9.99", "12.0", None, 2, "§8.4 below 10.0"),
    ("hemoglobin", "8.0", "12.0", None, 2, "§8.4 exactly 8.0 is G2"),
    ("hemoglobin", "7.9", "12.0", None, 3, "§8.4 below 8.0"),
    ("hemoglobin", "4.0", "12.0", None, 3, "§8.4 no numeric Grade 4"),
]


@pytest.mark.parametrize(("analyte", "value", "limit", "baseline", "expected", "row"), CASES, ids=[c[5] for c in CASES])
def test_grade_matches_reference_table(analyte, value, limit, baseline, expected, row):
    kw = {"lln": D(limit)} if analyte == "hemoglobin" else {"uln": D(limit)}
    result = grade(analyte, D(value), baseline=D(baseline) if baseline else None, **kw)
    assert result.grade == expected, row
    assert result.version == "CTCAE v5.0"


def test_multiple_of_uln_is_exact():
    assert grade("total_bilirubin", D("3.6"), uln=D("1.2")).x_uln == D(3)
    assert grade("alt", D("250"), uln=D("40")).x_uln == D("6.25")


def test_heart_rate_is_never_graded_from_the_rate_alone():
    """§8.5: sinus bradycardia has no heart-rate number in its grades."""
    result = grade("heart_rate", D(38), lln=D(60))
    assert result.grade is None
    assert "8.5" in result.basis


def test_missing_uln_is_refused_with_a_message():
    with pytest.raises(InputError, match="ULN is required"):
        grade("alt", D(50), uln=None)
