"""Analytes the app records: canonical unit, accepted units, plausible range. Pure Python.

Values are kept in the canonical unit (the unit the label's and CTCAE's thresholds are
written in); the value and unit as reported are kept beside them. Conversions are listed
only where they are fixed by definition or by the conventional laboratory factor; any
other unit is refused with a message naming the units that are accepted.

Factors are exact fractions (1/17.1 is 10/171), never a rounded decimal: a bilirubin of
61.5 µmol/L with a ULN of 20.5 µmol/L is exactly 3.0× ULN, and must not come out as
3.000…1× and cross the "> 3× ULN" boundary of reference §4 (convention A7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from protocols.errors import InputError


@dataclass(frozen=True)
class Analyte:
    code: str
    label: str
    unit: str
    # unit as written -> exact factor that turns a value in that unit into the canonical unit
    units: dict[str, Fraction] = field(default_factory=dict)
    minimum: Decimal = Decimal(0)
    maximum: Decimal = Decimal(0)
    has_uln: bool = False
    has_lln: bool = False
    # CTCAE grades anemia from the LLN (reference §8.4); the heart rate's rules use fixed
    # rates (< 60 bpm, §4.4), so a case may leave its LLN out.
    lln_required: bool = False
    family: str = ""
    # Plausible reference limits (ULN or LLN) in the canonical unit: a design limit against
    # typing errors (a ULN of 1,000,000 would grade every ALT 0), not a clinical rule.
    limit_range: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0))

    def factor(self, unit: str | None) -> Fraction:
        if unit is None or unit.strip() == "":
            return Fraction(1)
        key = normalise_unit(unit)
        for name, factor in self.units.items():
            if normalise_unit(name) == key:
                return factor
        accepted = ", ".join(self.units)
        raise InputError(f"Unknown unit {unit!r} for {self.label}; accepted: {accepted}.")

    def check_plausible(self, value: Decimal | Fraction) -> None:
        """Physiologically impossible values are refused (reliability.md I3)."""
        if value < self.minimum or value > self.maximum:
            raise InputError(
                f"{self.label} of {format_decimal(to_decimal(value))} {self.unit} is not a possible value "
                f"(expected {format_decimal(self.minimum)}–{format_decimal(self.maximum)} {self.unit})."
            )


    def check_limit_plausible(self, name: str, limit: Decimal | Fraction) -> None:
        low, high = self.limit_range
        if not low <= limit <= high:
            raise InputError(
                f"{self.label} {name} of {format_decimal(to_decimal(limit))} {self.unit} is not a plausible reference "
                f"limit (expected {format_decimal(low)}–{format_decimal(high)} {self.unit})."
            )


def normalise_unit(unit: str) -> str:
    return unit.strip().lower().replace("μ", "µ").replace("umol", "µmol").replace("ug", "µg").replace(" ", "")


def format_decimal(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def to_decimal(value: Fraction | Decimal, places: int = 4) -> Decimal:
    """A value for storage or display, to `places` decimals (half-even)."""
    q = Decimal(1).scaleb(-places)
    if isinstance(value, Decimal):
        return value.quantize(q)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(q)


def ratio_to_decimal(ratio: Fraction | Decimal, places: int = 3) -> Decimal:
    """A multiple of a limit (× ULN) rounded *up* to `places` decimals.

    Every threshold the reference uses (1, 1.5, 2, 2.5, 3, 5, 6, 10, 20 × ULN) lies on
    that grid, and rounding up never moves a value across one: a ratio above 3 stays
    above 3 (3.0000001 shows as 3.001, not 3.000), and a ratio at or below 3 never
    shows above it. So what is stored and shown agrees with the strict "> k × ULN"
    comparison the rules make (reference §4, A7)."""
    scaled = Fraction(ratio) * 10**places
    up = -((-scaled.numerator) // scaled.denominator)  # exact ceiling
    return Decimal(up).scaleb(-places)


_ENZYME_UNITS = {"U/L": Fraction(1), "IU/L": Fraction(1), "µkat/L": Fraction(60)}  # 1 µkat = 60 U by definition

ANALYTES: dict[str, Analyte] = {
    a.code: a
    for a in [
        Analyte("alt", "ALT", "U/L", _ENZYME_UNITS, Decimal(0), Decimal(20000), has_uln=True, family="liver",
                limit_range=(Decimal(5), Decimal(200))),
        Analyte("ast", "AST", "U/L", _ENZYME_UNITS, Decimal(0), Decimal(20000), has_uln=True, family="liver",
                limit_range=(Decimal(5), Decimal(200))),
        Analyte(
            "total_bilirubin", "Total bilirubin", "mg/dL",
            # conventional factor: 1 mg/dL = 17.1 µmol/L
            {"mg/dL": Fraction(1), "µmol/L": 1 / Fraction("17.1")},
            Decimal(0), Decimal(60), has_uln=True, family="liver", limit_range=(Decimal("0.1"), Decimal(5)),
        ),
        Analyte(
            "creatinine", "Creatinine", "mg/dL",
            # conventional factor: 1 mg/dL = 88.4 µmol/L
            {"mg/dL": Fraction(1), "µmol/L": 1 / Fraction("88.4")},
            Decimal(0), Decimal(30), has_uln=True, family="kidney", limit_range=(Decimal("0.1"), Decimal(5)),
        ),
        Analyte("cpk", "CPK", "U/L", _ENZYME_UNITS, Decimal(0), Decimal(500000), has_uln=True, family="muscle",
                limit_range=(Decimal(20), Decimal(1000))),
        Analyte(
            "hemoglobin", "Hemoglobin", "g/dL",
            # mmol/L is refused: CTCAE's own mmol/L thresholds do not convert exactly (§8.4).
            {"g/dL": Fraction(1), "g/L": Fraction(1, 10)},
            Decimal(1), Decimal(25), has_lln=True, lln_required=True, family="blood", limit_range=(Decimal(5), Decimal(20)),
        ),
        Analyte(
            "heart_rate", "Heart rate", "beats/min",
            {"beats/min": Fraction(1), "bpm": Fraction(1), "/min": Fraction(1)},
            Decimal(20), Decimal(250), has_lln=True, family="heart", limit_range=(Decimal(30), Decimal(100)),
        ),
        Analyte("systolic_bp", "Systolic BP", "mmHg", {"mmHg": Fraction(1)}, Decimal(40), Decimal(300), family="heart"),
        Analyte("diastolic_bp", "Diastolic BP", "mmHg", {"mmHg": Fraction(1)}, Decimal(20), Decimal(200), family="heart"),
        Analyte(
            "alectinib_cmin", "Alectinib trough (Cmin)", "ng/mL",
            {"ng/mL": Fraction(1), "µg/L": Fraction(1)},
            Decimal(0), Decimal(5000), family="tdm",
        ),
    ]
}

# Reference §10: target trough, information only; never drives a dose increase.
CMIN_TARGET_NG_ML = Decimal(435)


def get_analyte(code: str) -> Analyte:
    try:
        return ANALYTES[code]
    except KeyError:
        raise InputError(f"Unknown analyte {code!r}; known: {', '.join(ANALYTES)}.") from None
