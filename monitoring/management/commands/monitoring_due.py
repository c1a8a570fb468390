"""python manage.py monitoring_due CASE.json  (or - for standard input)

Prints the status of every monitoring requirement of the default schedule as JSON:
  {"treatment_start": "2026-01-05", "today": "2026-02-20", "grace_days": 0,
   "due_soon_days": 3, "last_tests": {"lft": "2026-02-02", "cpk": "2026-01-19"}}
-> {"lft": {"due": "2026-02-16", "status": "overdue"}, "cpk": {"due": null, ...}, ...}
Bad input exits 2 with a one-line message on stderr."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand

from monitoring.rules import DEFAULT_REQUIREMENTS, evaluate
from protocols.cli import run_json_command
from protocols.errors import InputError

KEYS = {"treatment_start", "today", "grace_days", "due_soon_days", "last_tests"}


def _date(raw, what: str) -> date:
    if not isinstance(raw, str):
        raise InputError(f"{what} must be a date as YYYY-MM-DD.")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{what} must be a date as YYYY-MM-DD, not {raw!r}.") from None


def _days(data, key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60:
        raise InputError(f"{key} must be a whole number of days from 0 to 60.")
    return value


def due_report(data) -> dict:
    if not isinstance(data, dict):
        raise InputError("The case must be a JSON object.")
    if set(data) - KEYS:
        raise InputError(f"Unknown key(s): {', '.join(sorted(set(data) - KEYS))}.")
    for key in ("treatment_start", "today"):
        if key not in data:
            raise InputError(f"{key} is required.")
    start, today = _date(data["treatment_start"], "treatment_start"), _date(data["today"], "today")
    if today < start:
        raise InputError("today is before treatment_start.")
    grace, soon = _days(data, "grace_days", 0), _days(data, "due_soon_days", 3)
    last_tests = data.get("last_tests") or {}
    if not isinstance(last_tests, dict):
        raise InputError("last_tests must be an object of requirement: date.")
    known = {r.code for r in DEFAULT_REQUIREMENTS}
    if set(last_tests) - known:
        raise InputError(f"Unknown requirement(s): {', '.join(sorted(set(last_tests) - known))}; known: {', '.join(sorted(known))}.")
    out = {}
    for req in DEFAULT_REQUIREMENTS:
        last = _date(last_tests[req.code], f"last_tests.{req.code}") if req.code in last_tests else None
        if last is not None and last > today:
            raise InputError(f"last_tests.{req.code} is after today.")
        result = evaluate(req.schedule, start=start, last=last, today=today, grace_days=grace, due_soon_days=soon)
        out[req.code] = {**result, "due": result["due"].isoformat() if result["due"] else None}
    return out


class Command(BaseCommand):
    help = "Print the monitoring status of every requirement of the default schedule (JSON file, or - for stdin)."

    def add_arguments(self, parser):
        parser.add_argument("case", help="path to the case JSON, or - for standard input")

    def handle(self, *args, **options):
        run_json_command(self, "monitoring_due", options["case"], due_report)
