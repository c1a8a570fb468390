"""One laboratory result in exact numbers, and the one place its grade and × ULN come from.

Pure Python. The value and limits are kept as exact fractions in the analyte's canonical
unit, converted from the numbers the laboratory reported with exact factors
(`protocols.analytes`). Because nothing is rounded on the way, the multiple of a limit is
the same whether the laboratory reported in mg/dL or µmol/L (the unit cancels), and a
value at exactly k × ULN is exactly k × ULN (reference §4 conventions, A7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from protocols import ctcae
from protocols.analytes import get_analyte

Number = Fraction | Decimal | int


@dataclass(frozen=True)
class Lab:
    """A result in the canonical unit, exact. `collected_at` is optional: the engine uses
    it only to tell results taken during a hold from those taken before it."""

    value: Fraction
    uln: Fraction | None = None
    lln: Fraction | None = None
    collected_at: datetime | None = None

    def __post_init__(self) -> None:
        # Accept Decimals and ints from callers; keep everything exact.
        object.__setattr__(self, "value", Fraction(self.value))
        for name in ("uln", "lln"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, Fraction(v))

    @property
    def x_uln(self) -> Fraction | None:
        return self.value / self.uln if self.uln else None

    def exceeds(self, k: Fraction | int | str) -> bool:
        """value > k × ULN, exactly (reference §4: "> k × ULN" is strictly greater)."""
        return self.uln is not None and self.value > Fraction(k) * self.uln

    def within(self, k: Fraction | int | str) -> bool:
        """value ≤ k × ULN, exactly ("≤ k × ULN" includes equality)."""
        return self.uln is not None and self.value <= Fraction(k) * self.uln


def lab_from_reported(
    analyte: str,
    value: Number,
    unit: str | None = None,
    *,
    uln: Number | None = None,
    lln: Number | None = None,
    limits_unit: str | None = None,
    collected_at: datetime | None = None,
) -> Lab:
    """The exact canonical Lab for numbers as the laboratory reported them. The limits are
    in `limits_unit` when given (a clinic default kept in the canonical unit), else in
    `unit`."""
    a = get_analyte(analyte)
    factor = a.factor(unit)
    limit_factor = a.factor(limits_unit) if limits_unit is not None else factor
    return Lab(
        Fraction(value) * factor,
        Fraction(uln) * limit_factor if uln is not None else None,
        Fraction(lln) * limit_factor if lln is not None else None,
        collected_at,
    )


def grade_lab(analyte: str, lab: Lab, baseline: Lab | None = None) -> ctcae.Grading:
    """CTCAE grade and × ULN of one result: every page, job and command uses this."""
    return ctcae.grade(analyte, lab.value, uln=lab.uln, lln=lab.lln, baseline=baseline.value if baseline else None)
