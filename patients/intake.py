"""The one intake path for results that arrive (issue #15): CSV files, HL7 v2 messages,
FHIR Bundles and the REST API all hand their rows here as `Sent`, and every row comes
out as one verdict: created, a duplicate of a stored result (skipped), an amendment of
one (a corrected result), or refused with its line, field and reason.

`check` is the dry run: it reads, matches and validates, and writes nothing. `commit`
saves what `check` accepted through the same services a typed result goes through
(`services.lab_panel_record`, `services.lab_result_amend`), so an imported result is
graded, runs the toxicity engine, supersedes stale recommendations, moves due dates and
lands on the history exactly as a typed one does.

Matching: the MRN within the clinic; the test by LOINC code first (protocols.codes, a
table with its source), then by the clinic's remembered local names (AnalyteAlias), then
by the app's own names; the unit by UCUM code, converted exactly (protocols.analytes);
the limits from the row, else the clinic's (protocols.labs.read_entry). Idempotent: a
row already stored (same patient, test, collection time and value) is skipped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from django.db import transaction
from django.utils import timezone

from accounts.clinic_time import clinic_zone
from accounts.models import Clinic, User
from patients import services
from patients.models import AnalyteAlias, LabImport, LabResult, Patient, ReferenceRange
from protocols import codes, dates
from protocols.analytes import ANALYTES
from protocols.errors import InputError
from protocols.labs import EntryError, read_entry
from protocols.numbers import said_of

LOINC_SYSTEMS = ("LN", "LOINC", codes.LOINC_SYSTEM)
_LOINC_SHAPE = re.compile(r"[0-9]{1,7}-[0-9]")
# The names every clinic shares: the analytes' codes and labels and the LOINC codes of the
# table. A clinic's own names (AnalyteAlias) come after them and can never redefine them.
BUILT_IN_NAMES: dict[str, str] = {
    **{AnalyteAlias.key_of(a.code): a.code for a in ANALYTES.values()},
    **{AnalyteAlias.key_of(a.label): a.code for a in ANALYTES.values()},
    **{AnalyteAlias.key_of(name): analyte for analyte, names in codes.SYNONYMS.items() for name in names},
    **{AnalyteAlias.key_of(code): analyte for code, analyte in codes.LOINC.items()},
    **{"ln" + AnalyteAlias.key_of(code): analyte for code, analyte in codes.LOINC.items()},  # "LN:1742-6"
}
CHUNK = 500  # patients per query when looking up stored results


class Outcome(StrEnum):
    CREATE = "create"
    DUPLICATE = "duplicate"
    AMEND = "amend"
    REFUSE = "refuse"


OUTCOME_LABELS = {
    Outcome.CREATE: "will be created",
    Outcome.DUPLICATE: "already recorded (skipped)",
    Outcome.AMEND: "corrects a stored result",
    Outcome.REFUSE: "refused",
}


@dataclass
class Sent:
    """One result as a sender gave it, before any reading. `line` is the file's line or
    the message's segment number, so that a refusal points at it."""

    line: int
    mrn: str
    test: str
    value: str
    unit: str = ""
    ref: str = ""  # the sender's own name for the row ("OBX 2"), for its answer
    collected_at: str | datetime = ""
    range: str = ""
    uln: str = ""
    lln: str = ""
    system: str = ""  # the code system the sender names for `test` ("LN": LOINC)
    other_names: tuple[str, ...] = ()  # the sender's text or local code for the test
    corrected: bool = False  # HL7 OBX-11 "C", FHIR status "corrected"/"amended"
    reason: str = ""  # the sender's reason for a correction
    problem: tuple[str, str] | None = None  # (field, reason): refused by the reader before any matching


@dataclass
class Options:
    """How to read a file's dates: ISO 8601 only, unless the user chose a format (I4)."""

    date_format: str = "iso"  # "iso", "dmy" (31/12/2026 14:30) or "mdy" (12/31/2026 14:30)


DATE_FORMATS = {
    "iso": "ISO 8601 (2026-11-22 14:30)",
    "dmy": "day/month/year (22/11/2026 14:30)",
    "mdy": "month/day/year (11/22/2026 14:30)",
}
_DMY = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d-%m-%Y %H:%M")
_MDY = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m-%d-%Y %H:%M")


@dataclass
class Verdict:
    """What happens to one sent row."""

    line: int
    outcome: Outcome
    field: str = ""
    reason: str = ""
    mrn: str = ""
    test: str = ""
    # Accepted rows only:
    patient_id: int | None = None
    analyte: str = ""
    collected_at: datetime | None = None
    entry: services.LabEntry | None = None
    stored_id: int | None = None  # the result this row duplicates or corrects
    correction_reason: str = ""
    result_ids: list[int] = dataclasses.field(default_factory=list)
    value: str = ""  # as read ("<0.1 mg/dL"), or as sent when refused
    when: str = ""  # the collection time as read, in the clinic's time, or as sent

    def as_list(self) -> list:
        """The compact form kept on LabImport.outcomes."""
        return [self.line, str(self.outcome), self.field, shown(self.reason), shown(self.mrn), shown(self.test),
                shown(self.value)[:60], shown(self.when)[:40]]


class Refused(Exception):
    def __init__(self, part: str, reason: str) -> None:
        super().__init__(reason)
        self.part, self.reason = part, reason


# --- Reading one row ------------------------------------------------------------------------


def resolve_test(sent: Sent, aliases: dict[str, str]) -> str:
    """The analyte a sent test names: its LOINC code, else a name this clinic taught the
    app, else the app's own code or label."""
    code = sent.test.strip()
    if not code and not sent.other_names:
        raise Refused("test", "The test is empty.")
    if sent.system.strip() in LOINC_SYSTEMS or _LOINC_SHAPE.fullmatch(code):
        if code in codes.LOINC:
            return codes.LOINC[code]
        if sent.system.strip() in LOINC_SYSTEMS and not sent.other_names:
            raise Refused("test", f"LOINC code {code!r} is not one the app records ({codes.LOINC_SOURCE}).")
    names = [AnalyteAlias.key_of(n) for n in (code, *sent.other_names) if AnalyteAlias.key_of(n)]
    for key in names:  # the app's own names first: a clinic's name never overrides them
        if key in BUILT_IN_NAMES:
            return BUILT_IN_NAMES[key]
    for key in names:
        if key in aliases:
            return aliases[key]
    shown = " / ".join(n for n in (code, *sent.other_names) if n)
    raise Refused("test", f"Unknown test {shown[:60]!r}: not a LOINC code the app knows, nor a name this clinic "
                          "has taught it (Imports → Test names).")


def read_time(raw: str | datetime, zone, options: Options) -> datetime:
    """An aware collection time. Text is read in the chosen format only; a time without
    an offset is the clinic's local time."""
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=zone)
    text = raw.strip()
    if not text:
        raise Refused("collected_at", "The collection time is empty.")
    value = None
    text = re.sub(r"\s+", " ", text)
    if re.fullmatch(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}", text):
        raise Refused("collected_at", f"{text[:40]!r} gives no time of day: the collection time is needed to the "
                                      "minute (a dose is taken twice a day).")
    text = re.sub(r"(:[0-9]{2}(?:\.[0-9]+)?) (Z|[+-][0-9]{2}:?[0-9]{2})$", r"\1\2", text)
    if options.date_format == "iso":
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?",
                        text):
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                value = None
        if value is None:
            raise Refused("collected_at", f"{text[:40]!r} is not an ISO date and time (2026-11-22 14:30); if the file "
                                          "writes dates another way, choose its date format.")
    else:
        for fmt in _DMY if options.date_format == "dmy" else _MDY:
            try:
                value = datetime.strptime(text, fmt)  # noqa: DTZ007 - made aware in the clinic's zone below
                break
            except ValueError:
                continue
        if value is None:
            raise Refused("collected_at", f"{text[:40]!r} is not a date and time in the chosen format "
                                          f"({DATE_FORMATS[options.date_format]}).")
    return value if value.tzinfo else _local(value, zone)


def _local(value: datetime, zone) -> datetime:
    """A wall-clock time in the clinic's zone; one that the clock change makes happen twice
    or not at all is refused rather than guessed."""
    first, second = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != value:
        raise Refused("collected_at", f"{value:%Y-%m-%d %H:%M} does not exist in the clinic's time zone (the clocks "
                                      "went forward): send the time with its UTC offset.")
    raise Refused("collected_at", f"{value:%Y-%m-%d %H:%M} happens twice in the clinic's time zone (the clocks went "
                                  "back): send the time with its UTC offset.")


def _limits(sent: Sent) -> dict[str, str | Decimal | None]:
    try:
        low, high = codes.read_range(sent.range)
    except InputError as exc:
        raise Refused("range", said_of("The reference range", str(exc))) from None
    return {"uln": sent.uln.strip() or high, "lln": sent.lln.strip() or low}


def _has_nul(sent: Sent) -> bool:
    texts = [sent.mrn, sent.test, sent.value, sent.unit, sent.range, sent.uln, sent.lln, sent.reason, sent.system,
             *sent.other_names, sent.collected_at if isinstance(sent.collected_at, str) else ""]
    return any("\x00" in t for t in texts)


def shown(text: str) -> str:
    """A sender's text as kept on the outcomes: a NUL (which PostgreSQL cannot store in
    text) shown as the replacement character."""
    return text.replace("\x00", "\ufffd")


_PART_FIELD = {"analyte": "test", "value": "value", "unit": "unit", "uln": "range", "lln": "range"}


def read_row(sent: Sent, *, patients: dict[str, Patient], aliases: dict[str, str],
             defaults: dict[str, ReferenceRange], options: Options, now: datetime) -> Verdict:
    """One row read against the clinic: a Verdict CREATE (to be compared with what is
    stored) or REFUSE."""
    verdict = Verdict(sent.line, Outcome.REFUSE, mrn=shown(sent.mrn.strip()),
                      test=shown(sent.test.strip() or next(iter(sent.other_names), "")),
                      value=f"{sent.value} {sent.unit}".strip(),
                      when=sent.collected_at if isinstance(sent.collected_at, str) else sent.collected_at.isoformat())
    try:
        if _has_nul(sent):
            raise Refused("row", "The row contains a NUL character (binary data, not text): refused.")
        if sent.problem:
            raise Refused(*sent.problem)
        if not verdict.mrn:
            raise Refused("mrn", "The MRN is empty.")
        patient = patients.get(verdict.mrn)
        if patient is None:
            raise Refused("mrn", f"No patient with MRN {verdict.mrn[:32]!r} in this clinic.")
        analyte = resolve_test(sent, aliases)
        label = ANALYTES[analyte].label
        zone = clinic_zone(patient.clinic)
        collected_at = read_time(sent.collected_at, zone, options)
        if problem := dates.datetime_problem(timezone.localtime(collected_at, zone), now=now,
                                             born=patient.date_of_birth):
            raise Refused("collected_at", problem)
        try:
            value = codes.read_value(sent.value)
        except InputError as exc:
            raise Refused("value", said_of(f"The {label} value", str(exc))) from None
        limits = _limits(sent)
        unit = codes.unit_from_ucum(sent.unit) if sent.unit.strip() else ""
        if not unit and len(set(ANALYTES[analyte].units.values())) > 1:
            kinds = {factor: name for name, factor in reversed(ANALYTES[analyte].units.items())}
            raise Refused("unit", f"The unit is missing: {label} may be reported in {' or '.join(kinds.values())}, "
                                  "which are not the same numbers; the laboratory must say which (nothing is assumed).")
        default = defaults.get(analyte)
        try:
            read = read_entry(analyte, value.number, unit or None, uln=limits["uln"], lln=limits["lln"],
                              defaults=services.clinic_limits(default), collected_at=collected_at)
        except EntryError as exc:
            subject = f"{label} {exc.part.upper()}" if exc.part in ("uln", "lln") else label
            raise Refused(_PART_FIELD[exc.part], exc.said_of(subject)) from None
    except Refused as exc:
        verdict.field, verdict.reason = exc.part, exc.reason
        return verdict
    assert read is not None  # an empty value is refused by read_value
    verdict.outcome, verdict.patient_id, verdict.analyte, verdict.collected_at = (
        Outcome.CREATE, patient.pk, analyte, collected_at)
    verdict.test = label
    verdict.value = f"{value.comparator}{value.number} {unit or ANALYTES[analyte].unit}"
    verdict.when = timezone.localtime(collected_at, zone).strftime("%Y-%m-%d %H:%M %Z")
    verdict.entry = services.LabEntry(analyte, value.number, unit, limits["uln"], limits["lln"],
                                      comparator=value.comparator)
    verdict.correction_reason = sent.reason.strip() if sent.corrected else ""
    if sent.corrected:
        verdict.reason = "sent as a correction"
    return verdict


# --- Against what is stored -----------------------------------------------------------------


def _exact(analyte: str, value: Decimal, unit: str, comparator: str) -> tuple[Fraction, str]:
    return Fraction(value) * ANALYTES[analyte].factor(unit or None), comparator


def _stored(verdicts: list[Verdict]) -> dict[tuple[int, str, datetime], LabResult]:
    """Results in force at the same patient, test and time as an accepted row."""
    wanted = [v for v in verdicts if v.outcome is Outcome.CREATE]
    found: dict[tuple[int, str, datetime], LabResult] = {}
    patient_ids = sorted({v.patient_id for v in wanted if v.patient_id is not None})
    if not wanted:
        return found
    times = [v.collected_at for v in wanted if v.collected_at is not None]
    for start in range(0, len(patient_ids), CHUNK):
        rows = LabResult.objects.filter(patient_id__in=patient_ids[start:start + CHUNK],
                                        collected_at__gte=min(times), collected_at__lte=max(times))
        for lab in rows.only("id", "patient_id", "analyte", "collected_at", "reported_value", "reported_unit",
                             "comparator"):
            found[(lab.patient_id, lab.analyte, lab.collected_at)] = lab
    return found


def _compare(verdicts: list[Verdict]) -> None:
    """Each accepted row against the stored results and the rows before it in the same
    file: the same value is a duplicate, a corrected value an amendment, any other
    different value a refusal (a change comes as a correction, with a reason)."""
    stored = _stored(verdicts)
    seen: dict[tuple[int, str, datetime], Verdict] = {}
    for v in verdicts:
        if v.outcome is not Outcome.CREATE:
            continue
        assert v.entry is not None and v.patient_id is not None and v.collected_at is not None
        key = (v.patient_id, v.analyte, v.collected_at)
        mine = _exact(v.analyte, Decimal(v.entry.value), v.entry.unit, v.entry.comparator)
        earlier = seen.get(key)
        if earlier is not None:
            assert earlier.entry is not None
            same = _exact(earlier.analyte, Decimal(earlier.entry.value), earlier.entry.unit,
                          earlier.entry.comparator) == mine
            v.outcome = Outcome.DUPLICATE if same else Outcome.REFUSE
            v.field = "" if same else "value"
            v.reason = (f"repeats line {earlier.line}" if same else
                        f"line {earlier.line} gives a different value for the same test and collection time.")
            continue
        seen[key] = v
        lab = stored.get(key)
        if lab is None:
            continue
        v.stored_id = lab.pk
        if _exact(lab.analyte, lab.reported_value, lab.reported_unit, lab.comparator) == mine:
            v.outcome, v.reason = Outcome.DUPLICATE, f"already recorded (result #{lab.pk})"
        elif v.reason == "sent as a correction":
            v.outcome, v.reason = Outcome.AMEND, f"corrects result #{lab.pk} ({lab})"
        else:
            v.outcome, v.field = Outcome.REFUSE, "value"
            v.reason = (f"A different value ({lab}) is already recorded for this test at this collection time; "
                        "a change must be sent as a correction (result status C) with its reason.")


def check(clinic: Clinic, sent: Iterable[Sent], *, options: Options | None = None,
          now: datetime | None = None, progress: Callable[[int], None] | None = None) -> list[Verdict]:
    """The dry run: every row read and matched, nothing written."""
    options, now = options or Options(), now or timezone.now()
    rows = list(sent)
    mrns = {r.mrn.strip() for r in rows if r.mrn.strip() and "\x00" not in r.mrn}
    patients: dict[str, Patient] = {}
    mrn_list = sorted(mrns)
    for start in range(0, len(mrn_list), CHUNK):
        for p in Patient.objects.filter(clinic=clinic, mrn__in=mrn_list[start:start + CHUNK]).select_related("clinic"):
            patients[p.mrn] = p
    aliases = dict(AnalyteAlias.objects.filter(clinic=clinic).values_list("key", "analyte"))
    defaults = {r.analyte: r for r in ReferenceRange.objects.filter(clinic=clinic)}
    verdicts = []
    for i, row in enumerate(rows, 1):
        verdicts.append(read_row(row, patients=patients, aliases=aliases, defaults=defaults, options=options, now=now))
        if progress and i % 1000 == 0:
            progress(i)
    _compare(verdicts)
    return verdicts


def commit(verdicts: list[Verdict], *, user: User, source: str, lab_import: LabImport | None = None,
           progress: Callable[[int], None] | None = None) -> list[Verdict]:
    """Save what `check` accepted, in one transaction: new results a collection time at
    a time (a panel, as typed), corrections as amendments. A row that a save refuses
    after all (another user saved the same result meanwhile) is marked refused; the
    others stand."""
    groups: dict[tuple[int, datetime], list[Verdict]] = {}
    for v in verdicts:
        if v.outcome is Outcome.CREATE:
            assert v.patient_id is not None and v.collected_at is not None
            groups.setdefault((v.patient_id, v.collected_at), []).append(v)
    patients = Patient.objects.select_related("clinic").in_bulk({pid for pid, _ in groups} |
                                                                 {v.patient_id for v in verdicts
                                                                  if v.outcome is Outcome.AMEND})
    done = 0
    with transaction.atomic(), services.followups_batched():
        for (patient_id, collected_at), members in groups.items():
            _save_group(patients[patient_id], collected_at, members, user=user, source=source, lab_import=lab_import)
            done += len(members)
            if progress:
                progress(done)
        for v in verdicts:
            if v.outcome is Outcome.AMEND:
                _save_amendment(v, user=user, source=source, lab_import=lab_import)
    return verdicts


def _save_group(patient: Patient, collected_at: datetime, members: list[Verdict], *, user: User, source: str,
                lab_import: LabImport | None) -> None:
    try:
        with transaction.atomic():
            saved = services.lab_panel_record(patient=patient, collected_at=collected_at,
                                              entries=[m.entry for m in members if m.entry is not None],
                                              entered_by=user, source=source, lab_import=lab_import)
    except services.PanelError as exc:
        for m in members:
            m.outcome, m.field = Outcome.REFUSE, "value"
            m.reason = exc.errors.get(f"{m.analyte}_value") or "; ".join(exc.errors.values())
        return
    by_analyte = {lab.analyte: lab.pk for lab in saved}
    for m in members:
        m.result_ids = [by_analyte[m.analyte]] if m.analyte in by_analyte else []


def _save_amendment(v: Verdict, *, user: User, source: str, lab_import: LabImport | None) -> None:
    assert v.entry is not None
    lab = LabResult.objects.filter(pk=v.stored_id).first()
    if lab is None:
        v.outcome, v.field, v.reason = Outcome.REFUSE, "value", "The result it corrects is no longer in force."
        return
    reason = f"Corrected by the laboratory: {v.correction_reason}" if v.correction_reason else \
        "Corrected result sent by the laboratory."
    try:
        with transaction.atomic():
            new = services.lab_result_amend(lab=lab, value=Decimal(v.entry.value), unit=v.entry.unit or None,
                                            uln=v.entry.uln, lln=v.entry.lln, comparator=v.entry.comparator,
                                            reason=reason, user=user, source=source, lab_import=lab_import)
    except services.PanelError as exc:
        v.outcome, v.field, v.reason = Outcome.REFUSE, "value", "; ".join(exc.errors.values())
        return
    v.result_ids = [new.pk]


def counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    tally = {str(o): 0 for o in Outcome}
    for v in verdicts:
        tally[str(v.outcome)] += 1
    return tally
