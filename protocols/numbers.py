"""The one strict reading of a number typed by a person or sent by a machine. Pure Python.

Python's own `Decimal("2_40")` is 240 and `Decimal("1e999999")` is a number: a clinical
value is neither. Only plain decimals are accepted (ASCII digits, a point, or a comma
where the caller allows it, an optional exponent) with at most 30 significant digits and
a size between 1e-30 and 1e15, so nothing absurd reaches the rules. The lab-entry page,
corrections, the `assess` JSON case and imports all read numbers here.

Messages are predicates ("must be a number, not '2_40'."): the caller puts the name of
the field in front (`said_of`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from protocols.errors import InputError

MAX_SIGNIFICANT_DIGITS = 30
MAX_NUMBER_CHARS = 80  # a number's text, sign, point and exponent included
MAX_ADJUSTED_EXPONENT = 14  # |x| < 1e15
MIN_ADJUSTED_EXPONENT = -30  # |x| >= 1e-30, or exactly zero
MAX_INT = 10**15

# ASCII digits only (Python's \d and Decimal() also take Arabic-Indic or full-width ones).
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NUMBER_WITH_COMMA = re.compile(r"[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]+)?")
# "1,500" is a thousands separator to one reader and a decimal comma to another.
_AMBIGUOUS_COMMA = re.compile(r"[+-]?[1-9][0-9]{0,2},[0-9]{3}")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40])[:-1] + f"…' ({len(text)} characters)"


def said_of(subject: str, message: str) -> str:
    """'ALT must be a number …' for a predicate; a whole sentence stays as it is."""
    return f"{subject} {message}" if message[:1].islower() else message


def read_decimal(raw: str | int | Decimal, *, decimal_comma: bool = True) -> Decimal:
    """The exact Decimal of `raw`, or an InputError whose message is a predicate."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise InputError("must be a number.")
    if isinstance(raw, int):
        if not -MAX_INT < raw < MAX_INT:
            raise InputError("must be less than 1e15 in size.")
        return Decimal(raw)
    text = raw if isinstance(raw, str) else f"{raw:f}" if raw.is_finite() else str(raw)
    if len(text) > MAX_NUMBER_CHARS:
        raise InputError(f"has too many digits ({len(text)} characters; at most {MAX_SIGNIFICANT_DIGITS} "
                         "significant digits).")
    if not (_NUMBER_WITH_COMMA if decimal_comma else _NUMBER).fullmatch(text):
        raise InputError(f"must be a number, not {_shown(text)}.")
    if decimal_comma and _AMBIGUOUS_COMMA.fullmatch(text):
        raise InputError(f"is ambiguous (a thousands separator or a decimal comma?): {_shown(text)}; "
                         f"write {text.replace(',', '')} or {text.replace(',', '.')}.")
    try:
        number = Decimal(text.replace(",", "."))
    except (InvalidOperation, ValueError):  # an exponent beyond what Decimal holds
        raise InputError(f"must be less than 1e15 in size, not {_shown(text)}.") from None
    significant = len("".join(map(str, number.as_tuple().digits)).strip("0"))
    if significant > MAX_SIGNIFICANT_DIGITS:
        raise InputError(f"has too many significant digits ({significant}; at most {MAX_SIGNIFICANT_DIGITS}).")
    if number and not MIN_ADJUSTED_EXPONENT <= number.adjusted() <= MAX_ADJUSTED_EXPONENT:
        raise InputError(f"must be between 1e-30 and 1e15 in size, not {_shown(text)}.")
    return number
