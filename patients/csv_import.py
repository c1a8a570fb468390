"""Reading a clinic's own CSV export into sent rows for the intake path (issue #15).

A file is refused whole only when it cannot be read as a table: empty, binary, a single
column, a header with empty or repeated names, too big. Everything else is a row problem,
reported with its line by the intake's dry run: a row with the wrong number of columns,
an unknown MRN, a bad value. UTF-8 (with or without a BOM) and Latin-1; comma, semicolon,
tab or pipe delimited; decimal commas where the delimiter allows them (protocols.numbers
refuses the ambiguous "1,500").
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass

from patients.intake import Sent
from protocols.errors import InputError

MAX_BYTES = 25 * 1024 * 1024
MAX_ROWS = 200_000
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

FIELDS = {
    "mrn": "MRN",
    "test": "Test (LOINC code or name)",
    "value": "Value",
    "unit": "Unit",
    "collected_at": "Collected at",
    "range": "Reference range (low-high)",
    "uln": "ULN",
    "lln": "LLN",
    "status": "Result status (F final, C corrected)",
    "reason": "Reason for a correction",
}
REQUIRED = ("mrn", "test", "value", "collected_at")
# Header names a clinic's export commonly uses, for the first guess of the mapping.
SYNONYMS = {
    "mrn": ("mrn", "patientid", "patient", "medicalrecordnumber", "hospitalnumber", "pid", "pid3"),
    "test": ("test", "analyte", "loinc", "loinccode", "code", "testcode", "testname", "observation", "obx3"),
    "value": ("value", "result", "resultvalue", "obx5"),
    "unit": ("unit", "units", "uom", "obx6"),
    "collected_at": ("collectedat", "collected", "collectiontime", "collectiondate", "collectiondatetime",
                     "specimendate", "sampletime", "datetime", "date", "obr7"),
    "range": ("referencerange", "range", "refrange", "normalrange", "obx7"),
    "uln": ("uln", "upperlimit", "upperlimitofnormal"),
    "lln": ("lln", "lowerlimit", "lowerlimitofnormal"),
    "status": ("status", "resultstatus", "obx11"),
    "reason": ("reason", "correctionreason", "comment", "note"),
}


class CsvError(InputError):
    """The whole file cannot be read as a table."""


@dataclass
class Table:
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line number in the file, cells)
    encoding: str
    delimiter: str

    @property
    def header_key(self) -> str:
        return hashlib.sha256("\x1f".join(h.strip().casefold() for h in self.header).encode()).hexdigest()


def decode(content: bytes) -> tuple[str, str]:
    if not content.strip():
        raise CsvError("The file is empty.")
    if len(content) > MAX_BYTES:
        raise CsvError(f"The file is too big ({len(content) // 1024 // 1024} MB; at most {MAX_BYTES // 1024 // 1024} MB): "
                       "split it.")
    if b"\x00" in content[:65536]:
        raise CsvError("This is not a CSV file: it holds binary data (a spreadsheet or an archive?). "
                       "Save it as CSV first.")
    try:
        return content.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        return content.decode("latin-1"), "Latin-1"


def sniff_delimiter(first_line: str) -> str:
    """The delimiter that splits the header into the most columns."""
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        count = len(next(csv.reader([first_line], delimiter=delimiter), []))
        if count > best_count:
            best, best_count = delimiter, count
    if best_count < 2:
        raise CsvError("The first line has a single column: this is not a CSV file with a header row "
                       "(columns separated by commas, semicolons or tabs).")
    return best


def read(content: bytes) -> Table:
    text, encoding = decode(content)
    first = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    delimiter = sniff_delimiter(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                continue
            rows.append((reader.line_num, cells))
            if len(rows) > MAX_ROWS:
                raise CsvError(f"The file has more than {MAX_ROWS:,} rows: split it.")
    except csv.Error as exc:
        raise CsvError(f"Line {reader.line_num} cannot be read as CSV ({exc}).") from None
    assert header is not None
    if any(not h for h in header):
        raise CsvError(f"The header row has an empty column name (column {header.index('') + 1}).")
    seen: set[str] = set()
    for name in header:
        if name.casefold() in seen:
            raise CsvError(f"The header row names the column {name!r} twice.")
        seen.add(name.casefold())
    if not rows:
        raise CsvError("The file has a header row but no results.")
    return Table(header, rows, encoding, delimiter)


def _key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def guess_mapping(header: list[str]) -> dict[str, int | None]:
    """field -> column index, from the header's names."""
    keys = [_key(h) for h in header]
    mapping: dict[str, int | None] = {}
    for name, synonyms in SYNONYMS.items():
        mapping[name] = next((i for i, k in enumerate(keys) if k in synonyms), None)
    return mapping


def mapping_problems(mapping: dict[str, int | None], header: list[str]) -> dict[str, str]:
    problems = {name: f"Choose the column that holds the {FIELDS[name].split(' (')[0]}."
                for name in REQUIRED if mapping.get(name) is None}
    used: dict[int, str] = {}
    for name, index in mapping.items():
        if index is None:
            continue
        if not 0 <= index < len(header):
            problems[name] = "Choose one of the file's columns."
        elif index in used:
            problems[name] = f"The column {header[index]!r} is already chosen for {FIELDS[used[index]]}."
        else:
            used[index] = name
    return problems


def sent_rows(table: Table, mapping: dict[str, int | None]) -> Iterator[Sent]:
    width = len(table.header)

    def cell(cells: list[str], name: str) -> str:
        index = mapping.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    for line, cells in table.rows:
        status = cell(cells, "status").upper()
        sent = Sent(line=line, mrn=cell(cells, "mrn"), test=cell(cells, "test"), value=cell(cells, "value"),
                    unit=cell(cells, "unit"), collected_at=cell(cells, "collected_at"), range=cell(cells, "range"),
                    uln=cell(cells, "uln"), lln=cell(cells, "lln"), corrected=status in ("C", "CORRECTED", "AMENDED"),
                    reason=cell(cells, "reason"))
        if len(cells) != width:
            sent.problem = ("row", f"Line {line} has {len(cells)} columns; the header has {width}.")
        elif status and status not in ("F", "FINAL", "C", "CORRECTED", "AMENDED"):
            sent.problem = ("status", f"Result status {status[:20]!r} is not final (F) or corrected (C): "
                                      "only final results are recorded.")
        yield sent
