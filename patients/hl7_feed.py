"""The laboratory's HL7 v2 feed (issue #15): ORU^R01 messages, 2.3 to 2.5.1, parsed with
python-hl7 and read into the one intake path.

`receive` keeps the raw message (a LabImport) before anything else, processes it, and
returns the acknowledgement to send back: AA when every result was stored or was already
stored, AE with the reasons when some results were refused, AR when the message itself
cannot be taken (not ORU^R01, an unsupported version, no clinic by that name, not HL7).
A message that did not end in AA stays visible to the clinic's admins with its error and
can be reprocessed once the cause is fixed (a patient registered, a test name taught).

Mapping (HL7 v2.5.1 ch. 7, ORU^R01):
- MSH-6 receiving facility: the clinic's code; MSH-9 message type; MSH-10 control ID;
  MSH-12 version.
- PID-3 (first repetition, ID): the MRN in that clinic.
- OBR-7 observation date/time: the collection time; OBX-14, when sent, overrides it.
- OBX-3 code^text^system^alt code^alt text^alt system: LOINC ("LN") first, the texts
  and local codes as the clinic's names.
- OBX-2 NM (a number) or SN (comparator^number: a censored value); OBX-5 the value;
  OBX-6 the unit (UCUM code); OBX-7 the reference range; OBX-8 abnormal flags (kept
  in the raw message; the app grades from the value).
- OBX-11 result status: F final, C corrected (an amendment; an NTE after it gives the
  reason); anything else (P preliminary, X cannot be obtained, D deleted…) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import hl7
from django.db import transaction
from django.utils import timezone

from accounts.clinic_time import clinic_zone
from accounts.models import Clinic, User
from patients import imports, intake
from patients.intake import Outcome, Sent
from patients.models import LabImport, LabResult
from protocols import codes
from protocols.errors import InputError

VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
FEED_USERNAME = "lab-feed"
RESULT_STATUSES = {"F": False, "C": True}
VALUE_TYPES = ("NM", "SN")
MAX_ACK_TEXT = 80  # MSA-3 is 80 characters in v2.5.1
# ERR-2 (segment^sequence^field) and ERR-3 (HL7 table 0357) for each part a result is refused on.
ERR_LOCATION = {"mrn": "PID^1^3", "test": "OBX^{segment}^3", "value": "OBX^{segment}^5", "unit": "OBX^{segment}^6",
                "range": "OBX^{segment}^7", "status": "OBX^{segment}^11", "collected_at": "OBX^{segment}^14"}
ERR_CODE = {"mrn": "204^Unknown key identifier^HL70357", "test": "103^Table value not found^HL70357",
            "unit": "103^Table value not found^HL70357", "status": "103^Table value not found^HL70357",
            "value": "102^Data type error^HL70357", "collected_at": "102^Data type error^HL70357",
            "range": "102^Data type error^HL70357", "": "207^Application internal error^HL70357"}


class Rejected(Exception):
    """The message cannot be taken (AR); `message` and `clinic` when they were read."""

    def __init__(self, text: str, message: hl7.Message | None = None, clinic: Clinic | None = None) -> None:
        super().__init__(text)
        self.message, self.clinic = message, clinic


@dataclass
class Parsed:
    message: hl7.Message
    clinic: Clinic
    control_id: str
    rows: list[Sent]


def feed_user() -> User:
    """The author of the feed's results on the record: a user who cannot sign in."""
    user, created = User.objects.get_or_create(username=FEED_USERNAME,
                                               defaults={"first_name": "Laboratory", "last_name": "feed",
                                                         "is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def normalise(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return re.sub(r"\r\n|\n", "\r", text).strip("\r\x0b\x1c")


def _field(segment, field: int, component: int = 1, repetition: int = 1) -> str:
    try:
        return str(segment.extract_field(1, field, repetition, component)).strip()
    except (IndexError, KeyError, ValueError):
        return ""


def parse(raw: bytes | str) -> Parsed:
    text = normalise(raw)
    if not text.startswith("MSH"):
        raise Rejected("Not an HL7 v2 message (it must begin with MSH).")
    try:
        message = hl7.parse(text)
        msh = message.segment("MSH")
    except (hl7.HL7Exception, KeyError, IndexError, ValueError) as exc:
        raise Rejected(f"Not a readable HL7 v2 message ({exc}).") from None
    facility = _field(msh, 6)
    clinic = Clinic.objects.filter(code__iexact=facility).first() if facility and "\x00" not in facility else None
    if clinic is None:
        raise Rejected(f"Receiving facility (MSH-6) {facility or '(none)'!r} is not a clinic of this app.", message)
    kind = f"{_field(msh, 9, 1)}^{_field(msh, 9, 2)}"
    if kind != "ORU^R01":
        raise Rejected(f"Message type {kind} is not accepted (only ORU^R01 results).", message, clinic)
    version = _field(msh, 12)
    if version not in VERSIONS:
        raise Rejected(f"HL7 version {version or '(none)'} is not accepted ({', '.join(VERSIONS)}).", message, clinic)
    return Parsed(message, clinic, _field(msh, 10), _rows(message, clinic))


AMBIGUOUS = "\x00ambiguous"  # never an MRN: the intake refuses a row that carries it


def _mrn(segment) -> str:
    """PID-3: the repetition whose identifier type (CX.5) is MR, else the first; two
    different MRs name two patients, and the results are refused rather than guessed."""
    first, records = "", set()
    for repetition in range(1, 11):
        value = _field(segment, 3, 1, repetition)
        if not value:
            break
        first = first or value
        if _field(segment, 3, 5, repetition).upper() == "MR":
            records.add(value)
    if len(records) > 1:
        return AMBIGUOUS
    return next(iter(records), first)


def _rows(message: hl7.Message, clinic: Clinic) -> list[Sent]:
    zone = clinic_zone(clinic)
    rows: list[Sent] = []
    mrn, collected = "", ""
    last: Sent | None = None
    for number, segment in enumerate(message, 1):
        kind = str(segment[0])
        if kind == "PID":
            mrn, last = _mrn(segment), None
        elif kind == "OBR":
            collected, last = _field(segment, 7), None
        elif kind == "OBX":
            last = _obx(number, segment, mrn, _field(segment, 14) or collected, zone)
            rows.append(last)
        elif kind == "NTE" and last is not None and last.corrected:
            note = _field(segment, 3)
            last.reason = f"{last.reason} {note}".strip()[:300] if note else last.reason
    return rows


def _obx(number: int, segment, mrn: str, when: str, zone) -> Sent:
    value_type, status = _field(segment, 2), _field(segment, 11).upper()
    comparator, value = _field(segment, 5, 1), _field(segment, 5, 2)
    if value_type != "SN":
        comparator, value = "", _field(segment, 5, 1)
    sent = Sent(line=number, ref=f"OBX {_field(segment, 1) or '?'}", mrn=mrn, test=_field(segment, 3, 1),
                system=_field(segment, 3, 3),
                other_names=tuple(n for n in (_field(segment, 3, 2), _field(segment, 3, 4), _field(segment, 3, 5)) if n),
                value=f"{comparator}{value}" if comparator not in ("", "=") else value,
                unit=_field(segment, 6, 1), range=_field(segment, 7), corrected=RESULT_STATUSES.get(status, False))
    if mrn == AMBIGUOUS:
        sent.mrn, sent.problem = "", ("mrn", "PID-3 holds two different MRs (medical record numbers): which patient "
                                             "is meant is not guessed.")
    try:
        sent.collected_at = codes.read_hl7_time(when, zone=zone) if when else ""
    except InputError as exc:
        sent.problem = ("collected_at", f"The observation time (OBR-7/OBX-14) {exc}")
    if status not in RESULT_STATUSES:
        sent.problem = ("status", f"Result status (OBX-11) {status or '(none)'!r} is not final (F) or corrected (C).")
    elif value_type not in VALUE_TYPES:
        sent.problem = ("value", f"Value type (OBX-2) {value_type or '(none)'!r} is not a number (NM or SN).")
    return sent


def ack(message: hl7.Message | None, code: str, text: str = "", raw: str = "",
        errors: list[tuple[int, str, str, str]] = ()) -> str:
    """The acknowledgement: MSA-3 a summary, and one ERR per refused result (v2.5 ERR:
    location segment^sequence^field, code 207 from table 0357, severity E, the reason as
    the user message)."""
    if message is None:
        control = ""
        match = re.match(r"MSH\|[^\r]*", raw or "")
        if match:
            parts = match.group(0).split("|")
            control = parts[9] if len(parts) > 9 else ""
        stamp = timezone.now().strftime("%Y%m%d%H%M%S")
        msa = f"MSA|{code}|{_escape(control)}|{_escape(text[:MAX_ACK_TEXT])}"
        return f"MSH|^~\\&|ALECTINIB||||{stamp}||ACK|ACK{stamp}|P|2.5.1\r{msa}"
    reply = message.create_ack(ack_code=code)
    lines = str(reply).split("\r")
    lines = [f"{line}|{_escape(text[:MAX_ACK_TEXT], message)}" if line.startswith("MSA") and text else line
             for line in lines]
    lines += [f"ERR||{ERR_LOCATION.get(part, f'OBX^{segment}^5').format(segment=segment)}|{ERR_CODE.get(part, ERR_CODE[''])}"
              f"|E||||{_escape(f'{ref}: {reason}', message)[:250]}" for segment, ref, part, reason in errors]
    return "\r".join(lines)


def _escape(text: str, message: hl7.Message | None = None) -> str:
    """Text for a field of the answer, with python-hl7's escape sequences for the message's
    own delimiters (v2.5.1 2.7); a line break would end the segment, so it becomes a space."""
    flat = text.replace("\r", " ").replace("\n", " ")
    return (message or _PLAIN).escape(flat)


_PLAIN = hl7.parse("MSH|^~\\&|ALECTINIB")


def receive(raw: bytes) -> str:
    """Keep the message, then process it; the ACK to send back."""
    imp = imports.lab_import_receive(clinic=None, kind=LabImport.Kind.HL7, name="", content=raw, user=feed_user())
    return process(imp)


def process(imp: LabImport) -> str:
    raw = bytes(imp.content)
    try:
        parsed = parse(raw)
    except Rejected as exc:
        if exc.message is not None:
            imp.name = intake.shown(_field(exc.message.segment("MSH"), 10))[:200]
        _record(imp, exc.clinic, [], "AR", str(exc))
        return ack(exc.message, "AR", str(exc), raw=normalise(raw))
    imp.clinic, imp.name = parsed.clinic, intake.shown(parsed.control_id)[:200]
    imp.save(update_fields=["clinic", "name"])
    if not parsed.rows:
        _record(imp, parsed.clinic, [], "AE", "The message holds no OBX results.")
        return ack(parsed.message, "AE", "The message holds no OBX results.")
    verdicts = intake.check(parsed.clinic, parsed.rows)
    with transaction.atomic():
        intake.commit(verdicts, user=imp.created_by, source=LabResult.Source.HL7, lab_import=imp)
    refused = [v for v in verdicts if v.outcome is Outcome.REFUSE]
    refs = {r.line: r.ref for r in parsed.rows}
    code = "AE" if refused else "AA"
    details = "; ".join(f"{refs.get(v.line, v.line)}: {v.reason}" for v in refused)
    summary = f"{len(refused)} of {len(verdicts)} results refused (see ERR)" if refused else ""
    _record(imp, parsed.clinic, verdicts, code, details)
    return ack(parsed.message, code, summary, errors=[(v.line, refs.get(v.line, ""), v.field, v.reason) for v in refused])


def reprocess(imp: LabImport) -> str:
    """Run a kept message again (after a patient was registered or a name taught): what
    was stored already is a duplicate, so nothing is saved twice."""
    return process(imp).split("\r")[1].split("|")[1]


def _record(imp: LabImport, clinic: Clinic | None, verdicts: list[intake.Verdict], code: str, error: str) -> None:
    imp.outcomes = [v.as_list() for v in verdicts]
    imp.counts = intake.counts(verdicts)
    imp.total = imp.processed = len(verdicts)
    imp.ack_code, imp.error = code, intake.shown(error)[:2000]
    # Every answer stays on the message: the lab received the first; a reprocess adds one.
    imp.options = {**imp.options, "acks": [*imp.options.get("acks", []),
                                           {"at": timezone.now().isoformat(timespec="seconds"), "code": code}]}
    imp.state = LabImport.State.DONE if code == "AA" else LabImport.State.FAILED
    imp.finished_at = timezone.now()
    imp.clinic = clinic or imp.clinic
    imp.save(update_fields=["outcomes", "counts", "total", "processed", "ack_code", "error", "state", "finished_at",
                            "clinic", "options", "name"])
