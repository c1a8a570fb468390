"""What a laboratory sends, read into what the app records. Pure Python.

Laboratories name a test with a LOINC code and a unit with a UCUM code (HL7 v2 OBX-3 and
OBX-6, FHIR Observation.code and valueQuantity.code). This module holds the two tables as
data, with their source, and the strict readers of the other parts of a sent result: a
censored value ("<0.1"), a reference range ("10-40") and an HL7 v2 timestamp. Every
reader raises InputError with a predicate, as protocols.numbers does, so that each door
can name its own field.

Sources:
- LOINC codes: LOINC (Regenstrief Institute), loinc.org, the "Component / Property /
  System / Scale" of each code as published (LOINC 2.78). Only codes whose property and
  system match the analyte the rules use are listed: a code for another specimen (urine
  creatinine) is not a serum value and is refused as unknown.
- UCUM codes: The Unified Code for Units of Measure, ucum.org (case-sensitive form,
  c/s), and the HL7 FHIR R4 guidance that `valueQuantity.system` is
  http://unitsofmeasure.org for them.
- HL7 v2 TS/DTM: HL7 v2.5.1 chapter 2A.75/2A.22 ("YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]").
- Censored values: HL7 v2 SN data type (comparator "<", ">", "<=", ">=") and FHIR
  Quantity.comparator; reliability.md I3 ("stored as a bound, not coerced").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal

from protocols.errors import InputError
from protocols.numbers import read_decimal

# LOINC code -> the app's analyte (protocols.analytes). Source: loinc.org (LOINC 2.78).
LOINC: dict[str, str] = {
    "1742-6": "alt",  # Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma
    "1743-4": "alt",  # ALT [Enzymatic activity/volume] in Serum or Plasma by With P-5'-P
    "1744-2": "alt",  # ALT [Enzymatic activity/volume] in Serum or Plasma by No addition of P-5'-P
    "76625-3": "alt",  # ALT [Enzymatic activity/volume] in Blood
    "1920-8": "ast",  # Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma
    "30239-8": "ast",  # AST [Enzymatic activity/volume] in Serum or Plasma by With P-5'-P
    "1975-2": "total_bilirubin",  # Bilirubin.total [Mass/volume] in Serum or Plasma
    "14631-6": "total_bilirubin",  # Bilirubin.total [Moles/volume] in Serum or Plasma
    "2160-0": "creatinine",  # Creatinine [Mass/volume] in Serum or Plasma
    "14682-9": "creatinine",  # Creatinine [Moles/volume] in Serum or Plasma
    "2157-6": "cpk",  # Creatine kinase [Enzymatic activity/volume] in Serum or Plasma
    "718-7": "hemoglobin",  # Hemoglobin [Mass/volume] in Blood
    "8867-4": "heart_rate",  # Heart rate
    "8480-6": "systolic_bp",  # Systolic blood pressure
    "8462-4": "diastolic_bp",  # Diastolic blood pressure
}
LOINC_SOURCE = "LOINC 2.78, loinc.org"

# Names laboratories commonly print for these tests (the LOINC component names and their
# usual abbreviations, loinc.org; the IFCC's ALT/AST and their older GPT/GOT names). They
# are the app's own, like the LOINC codes: no clinic can teach them as another test.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "alt": ("ALAT", "GPT", "SGPT", "Alanine aminotransferase", "ALT (GPT)"),
    "ast": ("ASAT", "GOT", "SGOT", "Aspartate aminotransferase", "AST (GOT)"),
    "total_bilirubin": ("Bilirubin", "Bilirubin total", "Bilirubin.total", "TBIL", "T-Bili"),
    "creatinine": ("Creat", "Crea", "Serum creatinine"),
    "cpk": ("CK", "Creatine kinase", "CK total", "Creatine phosphokinase"),
    "hemoglobin": ("Hb", "Hgb", "Haemoglobin"),
}

# UCUM code (case-sensitive) -> the unit as protocols.analytes writes it. Source: ucum.org.
UCUM: dict[str, str] = {
    "U/L": "U/L",
    "[IU]/L": "IU/L",
    "ukat/L": "µkat/L",
    "mg/dL": "mg/dL",
    "umol/L": "µmol/L",
    "g/dL": "g/dL",
    "g/L": "g/L",
    "/min": "beats/min",
    "{beats}/min": "beats/min",
    "mm[Hg]": "mmHg",
    "ng/mL": "ng/mL",
    "ug/L": "µg/L",
}
UCUM_SYSTEM = "http://unitsofmeasure.org"
LOINC_SYSTEM = "http://loinc.org"

COMPARATORS = ("<=", ">=", "<", ">")
_CENSORED = re.compile(r"\s*(<=|>=|<|>|≤|≥)\s*(\S.*?)\s*$")
_RANGE = re.compile(r"\s*(\S+?)\s*(?:-|–|—|\.\.|\s+to\s+)\s*(\S+)\s*$")
_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:([+-])(\d{2})(\d{2}))?")


def unit_from_ucum(code: str) -> str:
    """The app's spelling of a UCUM unit; a unit not in the table is passed on as sent,
    so that the analyte's own list decides (and names what it accepts)."""
    return UCUM.get(code.strip(), code.strip())


@dataclass(frozen=True)
class Value:
    """A sent value: the number, and a comparator when the value is censored ("<0.1")."""

    number: Decimal
    comparator: str = ""


def read_value(raw: str, *, decimal_comma: bool = True) -> Value:
    """'5.2', '5,2', '<0.1', '> 2000', '≤ 3'. A value that is not a number or a bound
    ('pending', 'NaN', 'see note') is refused, never coerced."""
    text = raw.strip()
    if not text:
        raise InputError("is empty.")
    match = _CENSORED.fullmatch(text)
    comparator = ""
    if match:
        comparator = {"≤": "<=", "≥": ">="}.get(match.group(1), match.group(1))
        text = match.group(2)
    return Value(read_decimal(text, decimal_comma=decimal_comma), comparator)


def read_range(raw: str, *, decimal_comma: bool = True) -> tuple[Decimal | None, Decimal | None]:
    """(low, high) of a reference range as laboratories write it: '10-40', '0.3 - 1.2',
    '<40' (no lower limit), '>60' (no upper limit). Empty: (None, None)."""
    text = raw.strip()
    if not text:
        return None, None
    match = _CENSORED.fullmatch(text)
    if match:
        bound = read_decimal(match.group(2), decimal_comma=decimal_comma)
        return (None, bound) if match.group(1) in ("<", "<=", "≤") else (bound, None)
    match = _RANGE.fullmatch(text)
    if not match:
        raise InputError(f"is not a reference range (expected 'low-high', '<high' or '>low'): {text[:40]!r}.")
    low, high = (read_decimal(part, decimal_comma=decimal_comma) for part in match.groups())
    if low > high:
        raise InputError(f"runs backwards ({text[:40]!r}): the lower limit is above the upper one.")
    return low, high


def read_hl7_time(raw: str, *, zone: tzinfo | None = None) -> datetime:
    """An HL7 v2 TS/DTM ('202611221030', '20261122103000+0100'), to the minute at
    least: a result's collection time without an hour cannot be placed against a dose.
    Without an offset the time is in `zone` (the clinic's), which the caller supplies."""
    text = raw.strip()
    match = _TS.fullmatch(text)
    if not match:
        raise InputError(f"is not an HL7 date and time (YYYYMMDDHHMM[SS][+ZZZZ]): {text[:40]!r}.")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    if minute is None:
        raise InputError(f"gives no time of day ({text!r}); the collection time is needed to the minute.")
    try:
        offset: tzinfo | None = None
        if sign:
            delta = timedelta(hours=int(off_h), minutes=int(off_m))
            offset = timezone(delta if sign == "+" else -delta)
        micro = int((fraction or "0").ljust(6, "0")) if fraction else 0
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
                         tzinfo=offset or zone)
    except ValueError as exc:
        raise InputError(f"is not a real date and time ({text!r}: {exc}).") from None
    if value.tzinfo is None:
        raise InputError("has no time zone.")
    return value
