"""One laboratory result in exact numbers, and the one place its grade and × ULN come from.

Pure Python. The value and limits are kept as exact fractions in the analyte's canonical
unit, converted from the numbers the laboratory reported with exact factors
(`protocols.analytes`). Because nothing is rounded on the way, the multiple of a limit is
the same whether the laboratory reported in mg/dL or µmol/L (the unit cancels), and a
value at exactly k × ULN is exactly k × ULN (reference §4 conventions, A7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from protocols import ctcae
from protocols.analytes import Analyte, get_analyte
from protocols.errors import InputError
from protocols.numbers import read_decimal, said_of

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


class EntryError(InputError):
    """A lab entry refused. `part` names what is wrong ("analyte", "value", "unit", "uln"
    or "lln") so that each door can point at its own field; the message is a predicate
    ("cannot be negative.") or a whole sentence: `said_of` puts the door's name for the
    field in front of a predicate."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part

    def said_of(self, subject: str) -> str:
        return said_of(subject, str(self))


@dataclass(frozen=True)
class Entry:
    """A lab entry as the laboratory reported it, checked, and exact in the canonical unit."""

    analyte: Analyte
    value: Decimal  # as reported
    unit: str  # as reported; the canonical unit when none was given
    reported: dict[str, Decimal | None]  # "uln"/"lln" as the lab reported them, in `unit`
    lab: Lab  # the canonical value with the limits in force (reported, else the default)

    def default_limit(self, name: str) -> Fraction | None:
        """The canonical limit taken from the default (None where the lab reported one)."""
        return getattr(self.lab, name) if self.reported[name] is None else None


def read_entry(
    analyte: str,
    value: str | int | Decimal | None,
    unit: str | None = None,
    *,
    uln: str | int | Decimal | None = None,
    lln: str | int | Decimal | None = None,
    defaults: Mapping[str, Fraction | Decimal | None] | None = None,
    collected_at: datetime | None = None,
) -> Entry | None:
    """The one reading of a laboratory entry, for every door (the lab panel, a correction,
    the `assess` case, imports): the analyte, the number (`protocols.numbers`), the unit
    (exact factor), no negative, a possible value (reliability.md I3), and the limits the
    analyte is graded against: the lab's, else `defaults` (the clinic's, canonical), each
    greater than zero and plausible. None when the value is left empty."""
    try:
        a = get_analyte(analyte)
    except InputError as exc:
        raise EntryError("analyte", str(exc)) from None
    number = _number("value", value)
    if number is None:
        return None
    try:
        factor = a.factor(unit)
    except InputError as exc:
        raise EntryError("unit", str(exc)) from None
    if number < 0:
        raise EntryError("value", "cannot be negative.")
    exact = Fraction(number) * factor
    try:
        a.check_plausible(exact)
    except InputError as exc:
        raise EntryError("value", str(exc)) from None
    reported: dict[str, Decimal | None] = {"uln": None, "lln": None}
    limits: dict[str, Fraction | None] = {"uln": None, "lln": None}
    for name, given, used in (("uln", uln, a.has_uln), ("lln", lln, a.has_lln)):
        if not used:
            continue
        limits[name], reported[name] = _limit(a, name, given, factor, defaults)
    return Entry(a, number, unit or a.unit, reported,
                 Lab(exact, limits["uln"], limits["lln"], collected_at))


def _number(part: str, raw: str | int | Decimal | None) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    try:
        return read_decimal(raw.strip() if isinstance(raw, str) else raw)
    except InputError as exc:
        raise EntryError(part, str(exc)) from None


def _limit(a: Analyte, name: str, given: str | int | Decimal | None, factor: Fraction,
           defaults: Mapping[str, Fraction | Decimal | None] | None) -> tuple[Fraction | None, Decimal | None]:
    """(the canonical limit, the limit as reported or None when the default was used)."""
    label = name.upper()
    number = _number(name, given)
    if number is None:
        fallback = (defaults or {}).get(name)
        if fallback is None and defaults is None and name == "lln" and not a.lln_required:
            return None, None  # a case without clinic defaults: the rules do not grade with it
        if fallback is None:
            where = "this clinic has no default range for it" if defaults is not None else "none was given"
            raise EntryError(name, f"is required: the laboratory reports the {label}, and {where}.")
        return Fraction(fallback), None
    if number <= 0:
        raise EntryError(name, "must be greater than zero.")
    canonical = Fraction(number) * factor
    try:
        a.check_limit_plausible(label, canonical)
    except InputError as exc:
        raise EntryError(name, str(exc)) from None
    return canonical, number


def grade_lab(analyte: str, lab: Lab, baseline: Lab | None = None) -> ctcae.Grading:
    """CTCAE grade and × ULN of one result: every page, job and command uses this."""
    return ctcae.grade(analyte, lab.value, uln=lab.uln, lln=lab.lln, baseline=baseline.value if baseline else None)
