"""The path converter for row ids: `<id:patient_pk>`.

Django's `<id:>` matches any run of digits, and a 20-digit id reached the database,
which cannot hold it (SQLite: OverflowError; PostgreSQL: out of range): a 500 instead of a
404. An id here is 1 to 19 digits and at most the largest id a row can have; anything else
does not match the URL, so it is a 404 like any id that is not there."""

from __future__ import annotations

MAX_ID = 2**63 - 1  # BigAutoField (DEFAULT_AUTO_FIELD): the largest id a row can have


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("not an id")  # the resolver treats it as no match: 404
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))
