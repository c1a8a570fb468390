"""The `assess` command's JSON case, validated whole, into an engine `Case`.

The structure is checked by strict pydantic models (no unknown keys, no bool read as a
number, no number read as a string); what depends on the analyte (its unit, whether it
needs a ULN or an LLN, the plausible range) is checked after, on the validated values.
Any problem becomes one `InputError` whose single line names the field, e.g.
``labs.alt.value must be a number, not '2_40'.``

The building blocks (`StrictModel`, `Num`, `Day`, `validated`, …) are shared with
`monitoring.case_input` (the `monitoring_due` command). No Django, no database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from protocols.analytes import ANALYTES
from protocols.dosing import LADDER
from protocols.engine import CLINICIAN_FACTS, Case, Lab, Snapshot
from protocols.errors import InputError
from protocols.labs import EntryError, read_entry
from protocols.numbers import MAX_SIGNIFICANT_DIGITS, read_decimal

__all__ = ["Day", "LongNumber", "Num", "StrictModel", "case_from_json", "show", "validated"]

# --- limits -------------------------------------------------------------------------------------

MIN_DAY, MAX_DAY = date(1900, 1, 1), date(9000, 12, 31)  # far from date arithmetic's limits
MAX_COUNT = 1000
MAX_ITEMS = 100  # resume_when, unlisted, during_hold

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
                       r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?")


M = TypeVar("M", bound=BaseModel)


class LongNumber:
    """A JSON integer too long to be read as an int (`protocols.cli` reads such numbers
    into this, so that the validation can name the field instead of json failing)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"a number of {len(self.text.lstrip('-'))} digits"


# --- messages -----------------------------------------------------------------------------------


def show(value: Any) -> str:
    """A short, one-line, JSON-flavoured picture of an input value for a message. Never
    repr() of a container: it may be nested thousands deep."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, LongNumber):
        return repr(value)
    if isinstance(value, int):
        return str(value) if -(10**40) < value < 10**40 else "a number of more than 40 digits"
    if isinstance(value, float):
        return {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, "NaN" if math.isnan(value) else repr(value))
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40])[:-1] + f"…' ({len(value)} characters)"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _fail(message: str) -> PydanticCustomError:
    """An error whose text is ours; the text goes through the context, never the template
    (the user's input may contain braces)."""
    return PydanticCustomError("input", "{message}", {"message": message})


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", part):
            out += f".{part}" if out else part
        else:
            out += f"[{show(part)}]"
    return out


def _join(path: str, message: str) -> str:
    """'labs.alt.value must be …' for a predicate, 'labs: Unknown analyte …' for a sentence."""
    if not path:
        return message
    return f"{path} {message}" if message[:1].islower() else f"{path}: {message}"


def _error_message(err: ErrorDetails) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "input":
        message = ctx["message"]
    elif kind == "missing":
        message = "is required."
    elif kind == "extra_forbidden":
        message = "is not a known key."
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "The case must be a JSON object." if not err["loc"] else f"must be an object, not {show(value)}."
    elif kind == "list_type":
        message = f"must be a list, not {show(value)}."
    elif kind == "too_long":
        message = f"must have at most {ctx.get('max_length')} items."
    else:  # not expected: every leaf type is ours; pydantic's own words, on one line
        message = f"is not valid: {err.get('msg', kind)}."
    return _join(_path(err["loc"]), message)


def validated(model: type[M], data: Any) -> M:
    """`data` validated by `model`, or an InputError naming the first problem's field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        more = f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in the input)" if len(errors) > 1 else ""
        message = _error_message(errors[0])
        raise InputError(message[:-1] + more + "." if more and message.endswith(".") else message + more) from None


# --- strict building blocks ---------------------------------------------------------------------


class StrictModel(BaseModel):
    """No unknown keys, no coercion; unknown keys are named with the known ones."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _only_known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                names = ", ".join(show(k) for k in unknown[:3]) + (" …" if len(unknown) > 3 else "")
                raise _fail(f"Unknown key{'s' if len(unknown) > 1 else ''} {names}; known: "
                            f"{', '.join(cls.model_fields)}.")
        return data


def to_decimal(value: Any) -> Decimal:
    """A JSON number or numeric string as an exact Decimal, read by the one number reader
    (`protocols.numbers`: no comma, underscore, space, inf or nan; at most 30 significant
    digits, between 1e-30 and 1e15 in size)."""
    if isinstance(value, LongNumber):
        raise _fail(f"has too many digits ({show(value)}; at most {MAX_SIGNIFICANT_DIGITS} significant digits).")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(f"must be a finite number, not {show(value)}.")
        value = repr(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(f"must be a number, not {show(value)}.")
    try:
        return read_decimal(value, decimal_comma=False)
    except InputError as exc:
        raise _fail(str(exc)) from None


def _choice(*options: Any) -> Callable[[Any], Any]:
    """One of `options`, compared by type too (true is not 1, "600" is not 600)."""
    words = [show(o).strip("'") for o in options]
    listed = ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]

    def check(value: Any) -> Any:
        for option in options:
            if type(value) is type(option) and value == option:
                return value
        raise _fail(f"must be {listed}, not {show(value)}.")

    return check


def _whole(low: int, high: int, what: str = "a whole number") -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int or not low <= value <= high:
            raise _fail(f"must be {what} from {low} to {high}, not {show(value)}.")
        return value

    return check


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise _fail(f"must be true or false, not {show(value)}.")
    return value


def _text(max_length: int, *, blank: bool = True) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _fail(f"must be a string, not {show(value)}.")
        if len(value) > max_length:
            raise _fail(f"must be at most {max_length} characters, not {len(value)}.")
        if not blank and not value.strip():
            raise _fail("must not be empty.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail("must be valid Unicode text (it contains a lone surrogate escape).") from None
        return value

    return check


def _bounded(value: date | datetime, raw: str) -> None:
    day = value.date() if isinstance(value, datetime) else value
    if not MIN_DAY <= day <= MAX_DAY:
        raise _fail(f"must be between {MIN_DAY} and {MAX_DAY}, not {show(raw)}.")


def to_day(value: Any) -> date:
    """An ISO date, YYYY-MM-DD exactly, between 1900-01-01 and 9000-12-31."""
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise _fail(f"must be a date as YYYY-MM-DD, not {show(value)}.")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _fail(f"must be a date as YYYY-MM-DD, not {show(value)}.") from None
    _bounded(day, value)
    return day


def to_datetime(value: Any) -> datetime:
    """An ISO date-time (or a date: its midnight), YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|±HH:MM]."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise _fail(f"must be an ISO date-time as YYYY-MM-DDTHH:MM[:SS][±HH:MM], not {show(value)}.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"must be an ISO date-time as YYYY-MM-DDTHH:MM[:SS][±HH:MM], not {show(value)}.") from None
    _bounded(moment, value)
    return moment


Num = Annotated[Decimal, PlainValidator(to_decimal)]
Day = Annotated[date, PlainValidator(to_day)]
Moment = Annotated[datetime, PlainValidator(to_datetime)]
Flag = Annotated[bool, PlainValidator(_flag)]
Count = Annotated[int, PlainValidator(_whole(0, MAX_COUNT))]
Dose = Annotated[int, PlainValidator(_choice(*LADDER))]
OptionalDose = Annotated[int | None, PlainValidator(_choice(*LADDER, None))]


def _known_analytes(value: Any) -> Any:
    if isinstance(value, dict):
        for code in value:
            if code not in ANALYTES:
                raise _fail(f"Unknown analyte {show(code)}; known: {', '.join(ANALYTES)}.")
    return value


# --- the assess case ------------------------------------------------------------------------------


class LabIn(StrictModel):
    value: Num
    unit: Annotated[str | None, PlainValidator(lambda v: None if v is None else _text(40)(v))] = None
    uln: Num | None = None
    lln: Num | None = None
    collected_at: Moment | None = None


Labs = Annotated[dict[str, LabIn], BeforeValidator(_known_analytes)]


class UnlistedIn(StrictModel):
    term: Annotated[str, PlainValidator(_text(80, blank=False))]
    grade: Annotated[int, PlainValidator(_choice(3, 4, 5))]


class EventsIn(StrictModel):
    ild: Flag = False
    ild_under_investigation: Flag = False
    ild_other_cause: Flag = False
    bradycardia: Annotated[str | None, PlainValidator(
        _choice(None, "asymptomatic", "symptomatic", "life_threatening"))] = None
    contributing_medication: Flag = False
    contributing_medication_adjusted: Flag = False
    hemolysis_suspected: Flag = False
    hemolysis_confirmed: Annotated[bool | None, PlainValidator(_choice(True, False, None))] = None
    hemolysis_resolved: Flag = False
    cholestasis_or_hemolysis: Flag = False
    gi_perforation: Flag = False
    scar: Annotated[str | None, PlainValidator(_choice(None, "sjs", "ten", "dress", "agep"))] = None
    unlisted: Annotated[list[UnlistedIn], Field(max_length=MAX_ITEMS)] = []


class HistoryIn(StrictModel):
    cpk_over_5x_uln_occurrences: Count = 0
    life_threatening_bradycardia_occurrences: Count = 0


def _criterion_analyte(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in ANALYTES:
        raise _fail(f"must be null or one of {', '.join(ANALYTES)}, not {show(value)}.")
    return value


def _clinician(value: Any) -> str | bool:
    if type(value) is bool or (isinstance(value, str) and value in CLINICIAN_FACTS):
        return value
    raise _fail(f"must be one of {', '.join(CLINICIAN_FACTS)} (or true/false), not {show(value)}.")


class CriterionIn(StrictModel):
    """One recovery criterion, as the engine writes it in `resume_when`."""

    analyte: Annotated[str | None, PlainValidator(_criterion_analyte)] = None
    max_x_uln: Num | None = None
    or_baseline: Flag = False
    min: Num | None = None
    or_asymptomatic: Flag = False
    clinician: Annotated[str | bool, PlainValidator(_clinician)] = False
    text: Annotated[str, PlainValidator(_text(500))] = ""

    @model_validator(mode="after")
    def _one_form(self) -> CriterionIn:
        given = self.model_fields_set
        if self.clinician:
            # Its analyte, if any, only names what is rechecked while the clinician decides.
            if given & {"max_x_uln", "min", "or_baseline", "or_asymptomatic"}:
                raise _fail("A clinician criterion has no max_x_uln, min, or_baseline or or_asymptomatic.")
        elif self.analyte == "heart_rate":
            if self.min is None or self.max_x_uln is not None or "or_baseline" in given:
                raise _fail("A heart_rate criterion needs min (beats/min), and no max_x_uln or or_baseline.")
            if not 20 <= self.min <= 250:
                raise _fail(f"The heart_rate criterion's min must be from 20 to 250 beats/min, not {self.min}.")
        elif self.analyte is not None:
            if self.max_x_uln is None or self.min is not None or "or_asymptomatic" in given:
                raise _fail(f"A criterion on {self.analyte} needs max_x_uln, and no min or or_asymptomatic.")
            if not ANALYTES[self.analyte].has_uln:
                raise _fail(f"The analyte {self.analyte} has no ULN, so it cannot have a max_x_uln criterion.")
            if self.max_x_uln <= 0:
                raise _fail(f"The criterion's max_x_uln must be greater than zero, not {self.max_x_uln}.")
        else:
            raise _fail("must name an analyte with max_x_uln, heart_rate with min, or a clinician fact.")
        return self

    def as_engine_dict(self) -> dict[str, Any]:
        """The keys given, as the engine writes them (max_x_uln a float, min an int when whole)."""
        out = self.model_dump(exclude_unset=True)
        if out.get("max_x_uln") is not None:
            out["max_x_uln"] = float(out["max_x_uln"])
        if out.get("min") is not None:
            m = out["min"]
            out["min"] = int(m) if m == m.to_integral_value() else float(m)
        return out


class WithheldIn(StrictModel):
    """The hold in force: the engine's earlier withhold output (action, resume,
    resume_dose_mg_bid, resume_when, hold_changed), optionally with when it began."""

    action: Annotated[str, PlainValidator(_choice("withhold"))] = "withhold"
    resume: Annotated[str | None, PlainValidator(_choice("same", "reduced", None))] = None
    resume_dose_mg_bid: OptionalDose = None
    resume_when: Annotated[list[CriterionIn], Field(max_length=MAX_ITEMS)]
    since: Moment | None = None
    hold_changed: Flag = False


class SnapshotIn(StrictModel):
    labs: Labs
    cpk_over_5x_uln_occurrences: Count = 0


class CaseIn(StrictModel):
    dose_mg_bid: Dose
    labs: Labs | None = None
    baseline: Labs | None = None
    events: EventsIn | None = None
    history: HistoryIn | None = None
    withheld: WithheldIn | None = None
    during_hold: Annotated[list[SnapshotIn], Field(max_length=MAX_ITEMS)] | None = None
    regime: Annotated[str, PlainValidator(_choice("us", "eu", "jp_adjuvant", "jp_advanced"))] = "us"
    starting_dose_mg_bid: OptionalDose = None

    @model_validator(mode="after")
    def _consistent(self) -> CaseIn:
        held = self.withheld
        if self.during_hold and held is None:
            raise _fail("during_hold is given without withheld: results during a hold need the hold in force.")
        if held is not None and held.resume_dose_mg_bid is not None:
            if held.resume_dose_mg_bid > self.dose_mg_bid:
                raise _fail(f"withheld.resume_dose_mg_bid ({held.resume_dose_mg_bid}) cannot be above dose_mg_bid "
                            f"({self.dose_mg_bid}).")
            expected = "same" if held.resume_dose_mg_bid == self.dose_mg_bid else "reduced"
            if held.resume is not None and held.resume != expected:
                raise _fail(f"withheld.resume is {held.resume!r} but resume_dose_mg_bid {held.resume_dose_mg_bid} "
                            f"with dose_mg_bid {self.dose_mg_bid} means {expected!r}.")
        return self



# --- from validated input to the engine's Case ----------------------------------------------------


def _labs(raw: dict[str, LabIn] | None, where: str) -> dict[str, Lab]:
    """Each lab through the one reading of a lab entry (protocols.labs.read_entry)."""
    labs: dict[str, Lab] = {}
    for code, item in (raw or {}).items():
        try:
            entry = read_entry(code, item.value, item.unit, uln=item.uln, lln=item.lln, collected_at=item.collected_at)
        except EntryError as exc:
            raise InputError(_join(f"{where}.{code}" + ("" if exc.part == "analyte" else f".{exc.part}"),
                                   str(exc))) from None
        assert entry is not None  # LabIn requires a value
        labs[code] = entry.lab
    return labs


def case_from_json(data: Any) -> Case:
    """Build a Case from the `assess` command's JSON (the keys: see the command's help)."""
    case = validated(CaseIn, data)
    events = case.events or EventsIn()
    history = case.history or HistoryIn()
    withheld: dict[str, Any] | None = None
    if case.withheld is not None:
        withheld = case.withheld.model_dump(exclude_unset=True, exclude={"resume_when"})
        withheld["resume_when"] = [c.as_engine_dict() for c in case.withheld.resume_when]
    return Case(
        dose_mg_bid=case.dose_mg_bid,
        labs=_labs(case.labs, "labs"),
        baseline=_labs(case.baseline, "baseline"),
        ild=events.ild,
        ild_under_investigation=events.ild_under_investigation,
        ild_other_cause=events.ild_other_cause,
        bradycardia=events.bradycardia,
        contributing_medication=events.contributing_medication,
        contributing_medication_adjusted=events.contributing_medication_adjusted,
        hemolysis_suspected=events.hemolysis_suspected,
        hemolysis_confirmed=events.hemolysis_confirmed,
        hemolysis_resolved=events.hemolysis_resolved,
        cholestasis_or_hemolysis=events.cholestasis_or_hemolysis,
        gi_perforation=events.gi_perforation,
        scar=events.scar,
        unlisted=tuple((u.term, u.grade) for u in events.unlisted),
        cpk_over_5x_uln_occurrences=history.cpk_over_5x_uln_occurrences,
        life_threatening_bradycardia_occurrences=history.life_threatening_bradycardia_occurrences,
        withheld=withheld,
        during_hold=[Snapshot(_labs(s.labs, f"during_hold[{i}].labs"), s.cpk_over_5x_uln_occurrences)
                     for i, s in enumerate(case.during_hold or [])],
        regime=case.regime,
        starting_dose_mg_bid=case.starting_dose_mg_bid,
    )
