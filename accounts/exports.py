"""Spreadsheet exports, every door the same: cells that a spreadsheet would run as a
formula are neutralised (reliability.md I6) and rows are streamed as they are written."""

from __future__ import annotations

from protocols.errors import InputError
from protocols.numbers import read_decimal


def safe_cell(value) -> str:
    """CSV injection guard (reliability.md I6): free text that a spreadsheet would run as
    a formula gets a leading quote; numbers are left as they are."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    """A plain number, read by the one number reader (protocols.numbers)."""
    try:
        read_decimal(text, decimal_comma=False)
    except InputError:
        return False
    return True


class Echo:
    """csv.writer's file: each row is yielded as it is written (Django's streaming CSV recipe)."""

    def write(self, value: str) -> str:
        return value
