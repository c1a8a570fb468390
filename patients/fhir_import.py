"""A FHIR R4 Bundle of laboratory Observations, read into sent rows (issue #15).

Each entry is validated on its own with fhir.resources (its R4B models read R4
Observations; ecosystem.md), so that one malformed Observation is a refused row and not a
refused file. Mapping (HL7 FHIR R4 Observation, "Laboratory result" profile):
- subject: `subject.identifier.value` (the MRN), or a Patient in the Bundle that
  `subject.reference` points at, by its MR identifier (else its first);
- code: the `http://loinc.org` coding first; other codings and `code.text` are names the
  clinic may have taught the app;
- `valueQuantity`: value, comparator (a censored value), UCUM `code` (else `unit`);
- `referenceRange[0]`: low and high;
- `effectiveDateTime` (or `effectivePeriod.start`): the collection time, to the minute;
- status: final, amended or corrected are results; a corrected or amended one corrects a
  stored result; anything else (preliminary, registered, entered-in-error) is refused.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from patients.intake import Sent
from protocols import codes
from protocols.errors import InputError

MAX_ENTRIES = 200_000
RESULT_STATUSES = ("final", "amended", "corrected")


def _bundle(content: bytes) -> dict[str, Any]:
    if not content.strip():
        raise InputError("The file is empty.")
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"This is not a FHIR JSON file ({exc}).") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise InputError("This is not a FHIR Bundle (resourceType must be \"Bundle\").")
    entries = data.get("entry") or []
    if not isinstance(entries, list) or not entries:
        raise InputError("The Bundle has no entries.")
    if len(entries) > MAX_ENTRIES:
        raise InputError(f"The Bundle has more than {MAX_ENTRIES:,} entries: split it.")
    return data


def _patients(entries: list) -> dict[str, str]:
    """reference ('Patient/123' or a fullUrl) -> MRN, for Patients carried in the Bundle."""
    found: dict[str, str] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
            continue
        identifiers = [i for i in resource.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
        mr = [i for i in identifiers if any(c.get("code") == "MR" for c in (i.get("type") or {}).get("coding") or [])]
        chosen = (mr or identifiers or [None])[0]
        if chosen is None:
            continue
        for ref in (entry.get("fullUrl"), f"Patient/{resource.get('id')}" if resource.get("id") else None):
            if ref:
                found[ref] = str(chosen["value"])
    return found


def _time(obs: Observation) -> str | datetime:
    when = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None)
    if isinstance(when, datetime):
        return when
    if isinstance(when, date):
        return when.isoformat()  # a day without a time: refused by the intake, with its reason
    return ""


def _row(line: int, obs: Observation, patients: dict[str, str]) -> Sent:
    loinc, names = "", []
    for coding in obs.code.coding or []:
        if coding.system == codes.LOINC_SYSTEM and coding.code and not loinc:
            loinc = coding.code
        else:
            names += [n for n in (coding.code, coding.display) if n]
    if obs.code.text:
        names.append(obs.code.text)
    mrn = ""
    if obs.subject is not None:
        if obs.subject.identifier is not None and obs.subject.identifier.value:
            mrn = obs.subject.identifier.value
        elif obs.subject.reference:
            mrn = patients.get(obs.subject.reference, "")
    quantity = obs.valueQuantity
    value = unit = ""
    if quantity is not None and quantity.value is not None:
        value = f"{quantity.comparator or ''}{quantity.value}"
        unit = quantity.code if quantity.system == codes.UCUM_SYSTEM and quantity.code else (quantity.unit or "")
    low = high = ""
    if obs.referenceRange:
        first = obs.referenceRange[0]
        low = f"{first.low.value}" if first.low is not None and first.low.value is not None else ""
        high = f"{first.high.value}" if first.high is not None and first.high.value is not None else ""
    sent = Sent(line=line, mrn=mrn, test=loinc, value=value, unit=unit, collected_at=_time(obs), uln=high, lln=low,
                system="LN" if loinc else "", other_names=tuple(names), corrected=obs.status in ("amended", "corrected"),
                reason=f"FHIR status {obs.status}" if obs.status in ("amended", "corrected") else "")
    if obs.status not in RESULT_STATUSES:
        sent.problem = ("status", f"Observation status {obs.status!r} is not a result (final, amended or corrected).")
    elif not value:
        sent.problem = ("value", "The Observation has no valueQuantity (a number with its unit).")
    elif not mrn:
        sent.problem = ("mrn", "The Observation names no patient by MRN (subject.identifier, or a Patient in the Bundle).")
    return sent


def sent_rows(content: bytes) -> list[Sent]:
    data = _bundle(content)
    entries = data["entry"]
    patients = _patients(entries)
    rows: list[Sent] = []
    for line, entry in enumerate(entries, 1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            rows.append(Sent(line=line, mrn="", test="", value="", problem=("entry", "The entry has no resource.")))
            continue
        if resource.get("resourceType") == "Patient":
            continue
        if resource.get("resourceType") != "Observation":
            rows.append(Sent(line=line, mrn="", test="", value="",
                             problem=("entry", f"A {str(resource.get('resourceType'))[:40]} is not an Observation.")))
            continue
        try:
            obs = Observation.model_validate(resource)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            rows.append(Sent(line=line, mrn="", test="", value="",
                             problem=("entry", f"Not a valid FHIR Observation: {where}: {first.get('msg', '')}"[:300])))
            continue
        rows.append(_row(line, obs, patients))
    return rows
