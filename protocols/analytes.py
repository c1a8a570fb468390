"""Analytes the app records: canonical unit, accepted units, plausible range. Pure Python.

Values are kept in the canonical unit (the unit the label's and CTCAE's thresholds are
written in); the value and unit as reported are kept beside them. Conversions are listed
only where they are fixed by definition or by the conventional laboratory factor; any
other unit is refused with a message naming the units that are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from protocols.errors import InputError


@dataclass(frozen=True)
class Analyte:
    code: str
    label: str
    unit: str
    # unit as written -> factor that turns a value in that unit into the canonical unit
    units: dict[str, Decimal] = field(default_factory=dict)
    minimum: Decimal = Decimal(0)
    maximum: Decimal = Decimal(0)
    has_uln: bool = False
    has_lln: bool = False
    family: str = ""

    def factor(self, unit: str | None) -> Decimal:
        if unit is None or unit.strip() == "":
            return Decimal(1)
        key = normalise_unit(unit)
        for name, factor in self.units.items():
            if normalise_unit(name) == key:
                return factor
        accepted = ", ".join(self.units)
        raise InputError(f"Unknown unit {unit!r} for {self.label}; accepted: {accepted}.")

    def to_canonical(self, value: Decimal, unit: str | None) -> Decimal:
        return value * self.factor(unit)

    def check_plausible(self, value: Decimal) -> None:
        """Physiologically impossible values are refused (reliability.md I3)."""
        if value < self.minimum or value > self.maximum:
            raise InputError(
                f"{self.label} of {format_decimal(value)} {self.unit} is not a possible value "
                f"(expected {format_decimal(self.minimum)}–{format_decimal(self.maximum)} {self.unit})."
            )


def normalise_unit(unit: str) -> str:
    return unit.strip().lower().replace("μ", "µ").replace("umol", "µmol").replace("ug", "µg").replace(" ", "")


def format_decimal(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_ENZYME_UNITS = {"U/L": Decimal(1), "IU/L": Decimal(1), "µkat/L": Decimal(60)}  # 1 µkat = 60 U by definition

ANALYTES: dict[str, Analyte] = {
    a.code: a
    for a in [
        Analyte("alt", "ALT", "U/L", _ENZYME_UNITS, Decimal(0), Decimal(20000), has_uln=True, family="liver"),
        Analyte("ast", "AST", "U/L", _ENZYME_UNITS, Decimal(0), Decimal(20000), has_uln=True, family="liver"),
        Analyte(
            "total_bilirubin", "Total bilirubin", "mg/dL",
            # conventional factor: 1 mg/dL = 17.1 µmol/L
            {"mg/dL": Decimal(1), "µmol/L": Decimal(1) / Decimal("17.1")},
            Decimal(0), Decimal(60), has_uln=True, family="liver",
        ),
        Analyte(
            "creatinine", "Creatinine", "mg/dL",
            # conventional factor: 1 mg/dL = 88.4 µmol/L
            {"mg/dL": Decimal(1), "µmol/L": Decimal(1) / Decimal("88.4")},
            Decimal(0), Decimal(30), has_uln=True, family="kidney",
        ),
        Analyte("cpk", "CPK", "U/L", _ENZYME_UNITS, Decimal(0), Decimal(500000), has_uln=True, family="muscle"),
        Analyte(
            "hemoglobin", "Hemoglobin", "g/dL",
            # mmol/L is refused: CTCAE's own mmol/L thresholds do not convert exactly (§8.4).
            {"g/dL": Decimal(1), "g/L": Decimal("0.1")},
            Decimal(1), Decimal(25), has_lln=True, family="blood",
        ),
        Analyte(
            "heart_rate", "Heart rate", "beats/min",
            {"beats/min": Decimal(1), "bpm": Decimal(1), "/min": Decimal(1)},
            Decimal(20), Decimal(250), has_lln=True, family="heart",
        ),
        Analyte("systolic_bp", "Systolic BP", "mmHg", {"mmHg": Decimal(1)}, Decimal(40), Decimal(300), family="heart"),
        Analyte("diastolic_bp", "Diastolic BP", "mmHg", {"mmHg": Decimal(1)}, Decimal(20), Decimal(200), family="heart"),
        Analyte(
            "alectinib_cmin", "Alectinib trough (Cmin)", "ng/mL",
            {"ng/mL": Decimal(1), "µg/L": Decimal(1)},
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
