"""The `monitoring_due` command's JSON case, validated whole (strict pydantic models, see
`protocols.case_input`), and the report it asks for. Pure Python, no database.

  {"treatment_start": "2026-01-05", "today": "2026-02-20", "grace_days": 0,
   "due_soon_days": 3, "last_tests": {"lft": "2026-02-02", "cpk": "2026-01-19"}}

Dates are YYYY-MM-DD between 1900-01-01 and 9000-12-31 (far from the limits of date
arithmetic); grace_days and due_soon_days are whole numbers of days from 0 to 60."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator
from pydantic_core import PydanticCustomError

from monitoring.rules import DEFAULT_REQUIREMENTS, MAX_SETTING_DAYS, evaluate
from protocols.case_input import Day, StrictModel, show, validated
from protocols.errors import InputError

REQUIREMENTS = tuple(r.code for r in DEFAULT_REQUIREMENTS)


def _days(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SETTING_DAYS:
        raise PydanticCustomError("input", "{message}", {
            "message": f"must be a whole number of days from 0 to {MAX_SETTING_DAYS}, not {show(value)}."})
    return value


def _known_requirements(value: Any) -> Any:
    if isinstance(value, dict):
        unknown = [k for k in value if k not in REQUIREMENTS]
        if unknown:
            raise PydanticCustomError("input", "{message}", {
                "message": f"Unknown requirement(s): {', '.join(show(k) for k in unknown[:3])}"
                           f"{' …' if len(unknown) > 3 else ''}; known: {', '.join(REQUIREMENTS)}."})
    return value


Days = Annotated[int, PlainValidator(_days)]


class DueCaseIn(StrictModel):
    treatment_start: Day
    today: Day
    grace_days: Days = 0
    due_soon_days: Days = 3
    last_tests: Annotated[dict[str, Day], BeforeValidator(_known_requirements)] | None = None


def due_report(data: Any) -> dict[str, Any]:
    """The status of every requirement of the default schedule, from the command's JSON."""
    case = validated(DueCaseIn, data)
    start, today = case.treatment_start, case.today
    if today < start:
        raise InputError("today is before treatment_start.")
    last_tests: dict[str, date] = case.last_tests or {}
    out = {}
    for req in DEFAULT_REQUIREMENTS:
        last = last_tests.get(req.code)
        if last is not None and last > today:
            raise InputError(f"last_tests.{req.code} is after today.")
        result = evaluate(req.schedule, start=start, last=last, today=today,
                          grace_days=case.grace_days, due_soon_days=case.due_soon_days)
        out[req.code] = {**result, "due": result["due"].isoformat() if result["due"] else None}
    return out
