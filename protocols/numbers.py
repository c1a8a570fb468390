"""Strict reading of a number typed by a person or sent by a machine. Pure Python.

Python's own `Decimal("2_40")` is 240 and `Decimal("1e999999")` is a number: a clinical
value is neither. Only plain decimals are accepted, with a point or a comma, an optional
exponent, and a bounded size, so nothing absurd reaches the rules.
"""

from __future__ import annotations

import re
from decimal import Decimal

from protocols.errors import InputError

# ASCII digits only (Python's \d and Decimal() also take Arabic-Indic or full-width ones).
_NUMBER = re.compile(r"[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]{1,3})?")
# "1,500" is a thousands separator to one reader and a decimal comma to another.
_AMBIGUOUS_COMMA = re.compile(r"[+-]?[1-9][0-9]{0,2},[0-9]{3}")
MAX_DIGITS = 30
MAX_EXPONENT = 12  # |value| < 10^12 and no finer than 10^-12


def parse_decimal(raw: object, what: str) -> Decimal | None:
    """The exact Decimal of `raw` (a str, int or Decimal), None for an empty string, or an
    InputError naming `what`."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise InputError(f"{what} must be a number.")
    text = str(raw).strip()
    if len(text) > 64 or not _NUMBER.fullmatch(text):
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise InputError(f"{what} must be a number, not {shown!r}.")
    if _AMBIGUOUS_COMMA.fullmatch(text):
        raise InputError(f"{what}: {text!r} is ambiguous (a thousands separator or a decimal comma?); "
                         f"write {text.replace(',', '')} or {text.replace(',', '.')}.")
    value = Decimal(text.replace(",", "."))
    digits = value.as_tuple()
    if len(digits.digits) > MAX_DIGITS or not -MAX_EXPONENT <= value.adjusted() < MAX_EXPONENT and value != 0:
        raise InputError(f"{what} is out of range.")
    return value
