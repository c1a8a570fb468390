"""Monitoring schedule: next due dates and statuses. Pure Python, dates in, dates out.

Source: ../shared/clinical-reference.md §5 and its scheduling conventions (A8):
1. Day 0 is the first dose date (`treatment_start`).
2. LFT phase 1 runs from day 0 up to (not including) the date 3 calendar months later,
   every 14 days; phase 2 after that, every calendar month.
3. The next due date is the last on-treatment test plus the interval of the phase the
   *due date* falls in; with no on-treatment test, the first due date is day 14.
4. Overdue means `today` is strictly after the due date (+ grace); due today is not overdue.
5. CPK is scheduled only inside the first calendar month, 14 days after the last CPK (or
   day 14); after the first month nothing is routinely due, and a CPK missed in the first
   month gives a one-time notice, not a recurring overdue flag.
6. Tests taken while the drug is withheld still count.
Heart rate, blood pressure, creatinine, hemoglobin, brain imaging and the trough level have
no interval in the label (§4.3, §4.4, §5, §10): they are due only where a clinic sets one.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from protocols.errors import InputError

NOT_REQUIRED, OK, DUE_SOON, OVERDUE, SNOOZED = "not_required", "ok", "due_soon", "overdue", "snoozed"
DEFAULT_DUE_SOON_DAYS = 3
DEFAULT_GRACE_DAYS = 0
# The longest grace, due-soon window or escalation a clinic may set: past due by more than
# this, an item is overdue whatever the settings (the worklist's due-soon look-back).
MAX_SETTING_DAYS = 60


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, clamped to the month's end
    (31 Jan + 1 month = 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Phase:
    """`months` calendar months long, or `days` days long (None and None: open-ended),
    one test every `every_days` days or `every_months` calendar months. A phase of days
    serves the check-ins' "day 7 and day 14, then every 4 weeks" (issue #16): 15 days of
    every 7 days, then every 28 (the phase ends before its last day + 1, as every phase)."""

    months: int | None
    every_days: int | None = None
    every_months: int | None = None
    days: int | None = None

    def step(self, day: date) -> date:
        if self.every_days:
            return day + timedelta(days=self.every_days)
        return add_months(day, self.every_months or 1)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("months", self.months), ("days", self.days), ("every_days", self.every_days),
                                  ("every_months", self.every_months)) if v is not None or k == "months"}

    @property
    def open_ended(self) -> bool:
        return self.months is None and self.days is None


@dataclass(frozen=True)
class Schedule:
    phases: tuple[Phase, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        phases = []
        for i, p in enumerate(data.get("phases", [])):
            months, days, every_months = p.get("months"), p.get("every_days"), p.get("every_months")
            length = p.get("days")
            if (days is None) == (every_months is None):
                raise InputError(f"Phase {i + 1}: give exactly one of every_days or every_months.")
            if months is not None and length is not None:
                raise InputError(f"Phase {i + 1}: give its length in months or in days, not both.")
            for name, v in (("months", months), ("days", length), ("every_days", days), ("every_months", every_months)):
                if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                    raise InputError(f"Phase {i + 1}: {name} must be a whole number of at least 1.")
            if months is None and length is None and i != len(data["phases"]) - 1:
                raise InputError("Only the last phase can be open-ended.")
            phases.append(Phase(months, days, every_months, length))
        return cls(tuple(phases))

    def as_dict(self) -> dict[str, Any]:
        return {"phases": [p.as_dict() for p in self.phases]}

    def bounds(self, start: date) -> list[tuple[date, date | None, Phase]]:
        """Each phase with its first day and the day after its last (None: open-ended)."""
        out: list[tuple[date, date | None, Phase]] = []
        begin, months, days = start, 0, 0
        for phase in self.phases:
            if phase.open_ended:
                out.append((begin, None, phase))
                break
            months, days = months + (phase.months or 0), days + (phase.days or 0)
            end = add_months(start, months) + timedelta(days=days)  # months counted from the start (clamped once)
            out.append((begin, end, phase))
            begin = end
        return out

    def end(self, start: date) -> date | None:
        bounds = self.bounds(start)
        return bounds[-1][1] if bounds else start


def next_due(schedule: Schedule, start: date, last: date | None) -> date | None:
    """Reference §5 conventions 2, 3 and 5. None: nothing is routinely due."""
    bounds = schedule.bounds(start)
    if not bounds:
        return None
    base = last if last is not None and last >= start else start
    for begin, end, phase in bounds:
        due = phase.step(base)
        if due >= begin and (end is None or due < end):
            return due
    return None


RETRY_BASE_SECONDS = 60
RETRY_CAP_SECONDS = 3600


def retry_delay(attempt: int, jitter: float = 0.0) -> timedelta:
    """How long to wait after failed attempt `attempt` (1, 2, …) before the next one:
    exponential from a minute, capped at an hour, spread by `jitter` (a fraction in
    [-0.2, 0.2]) so that many rows failed by one outage do not retry in step."""
    seconds = min(RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), RETRY_CAP_SECONDS)
    return timedelta(seconds=seconds * (1 + max(-0.2, min(0.2, jitter))))


def recheck_due(*, hold_start: date, last: date | None, every_days: int) -> date:
    """While the drug is withheld after an elevation, the prescriber's recheck interval
    counts from the last test taken since the hold began, or from the hold's start
    (reference §4.1 "more frequent tests once elevations appear"; §11: the prescriber sets it)."""
    base = last if last is not None and last >= hold_start else hold_start
    return base + timedelta(days=every_days)


def satisfied_days(results_by_day: dict[date, set[str]], analytes: Iterable[str], *, since: date | None = None) -> list[date]:
    """The days on which every analyte of a requirement was resulted (a full panel
    counts; ALT alone is not a liver panel), on or after `since`, in order."""
    wanted = set(analytes)
    return sorted(d for d, found in results_by_day.items() if wanted <= found and (since is None or d >= since))


_COMPUTE: Any = object()


def status(due: date | None, today: date, *, grace_days: int = DEFAULT_GRACE_DAYS,
           due_soon_days: int = DEFAULT_DUE_SOON_DAYS, snoozed_until: date | None = None,
           first_overdue: date | None = _COMPUTE) -> str:
    """The one status rule: not_required, ok, due_soon, overdue, or snoozed (past due, a
    follow-up recorded, the snooze not over). `first_overdue` is an item's stored
    `overdue_from` (computed from `due`, the grace and the snooze when not given)."""
    if due is None:
        return NOT_REQUIRED
    if first_overdue is _COMPUTE:
        first_overdue = overdue_from(due, grace_days=grace_days, snoozed_until=snoozed_until)
    if first_overdue is not None and today >= first_overdue:
        return OVERDUE
    if today > due:
        return SNOOZED if snoozed_until and snoozed_until >= today else DUE_SOON
    if today >= due - timedelta(days=due_soon_days):
        return DUE_SOON
    return OK


def overdue_from(due: date | None, *, grace_days: int = DEFAULT_GRACE_DAYS, snoozed_until: date | None = None) -> date | None:
    """The first day the item counts as overdue (stored and indexed: 'who is overdue' is
    `overdue_from <= today`). A snooze moves it to the day after the snooze ends."""
    if due is None:
        return None
    first = due + timedelta(days=grace_days + 1)
    if snoozed_until is not None and snoozed_until >= first:
        first = snoozed_until + timedelta(days=1)
    return first


# Structured check-ins (issue #16): the reference gives no interval; ASCO/ONS oral-therapy
# standards ask for an assessment at every contact. The default is clinic policy, editable
# like any requirement: day 7 and day 14, then every 4 weeks.
CHECK_IN = "checkin"
CHECK_IN_SCHEDULE = Schedule((Phase(None, every_days=7, days=15), Phase(None, every_days=28)))
CHECK_IN_SOURCE = ("Clinic policy: the reference has no check-in interval (ASCO/ONS oral anticancer therapy standards: "
                   "assess adherence and toxicity at every contact); default day 7 and day 14, then every 4 weeks")

# The default schedule per requirement (reference §5). `label_interval` False marks
# clinic policy: the label gives no number, so nothing is due until a clinic sets one.
@dataclass(frozen=True)
class RequirementDef:
    code: str
    label: str
    analytes: tuple[str, ...]
    schedule: Schedule
    source: str
    label_interval: bool


DEFAULT_REQUIREMENTS: tuple[RequirementDef, ...] = (
    RequirementDef("lft", "Liver panel (ALT, AST, total bilirubin)", ("alt", "ast", "total_bilirubin"),
                   Schedule((Phase(3, every_days=14), Phase(None, every_months=1))),
                   "Reference §5 (US PI §5.1; S2; S3; S6): every 2 weeks for 3 months, then monthly", True),
    RequirementDef("cpk", "CPK", ("cpk",), Schedule((Phase(1, every_days=14),)),
                   "Reference §5 (US PI §5.5; S2; S3; S7): every 2 weeks during the first month", True),
    RequirementDef("vitals", "Heart rate and blood pressure", ("heart_rate", "systolic_bp", "diastolic_bp"), Schedule(),
                   "Reference §4.4, §5: 'regularly' (US) / 'as clinically indicated' (EU) — clinic policy", False),
    RequirementDef("creatinine", "Creatinine", ("creatinine",), Schedule(),
                   "Reference §4.3, §5: no interval in the label — clinic policy", False),
    RequirementDef("hemoglobin", "Hemoglobin", ("hemoglobin",), Schedule(),
                   "Reference §4.6, §5: no routine interval; test when hemolysis is suspected — clinic policy", False),
    RequirementDef("brain_imaging", "Brain imaging", (), Schedule(),
                   "Not in the label — clinic policy", False),
    RequirementDef("cmin", "Alectinib trough (Cmin)", ("alectinib_cmin",), Schedule(),
                   "Reference §10: research target ≥ 435 ng/mL, not in the label — clinic policy", False),
    RequirementDef(CHECK_IN, "Check-in (phone or visit)", (), CHECK_IN_SCHEDULE, CHECK_IN_SOURCE, False),
)


def due_on(schedule: Schedule, *, start: date, last: date | None, today: date) -> tuple[date | None, str]:
    """The due date of one requirement on `today`, and the notice when its schedule is
    over and its last due test was not done: a one-time notice, not a recurring overdue
    flag (§5 convention 5)."""
    due = next_due(schedule, start, last)
    end = schedule.end(start)
    if due is not None and end is not None and today >= end:
        return None, f"missed: the test due {due:%d %b %Y} was not done (reference §5)"
    return due, ""


def evaluate(
    schedule: Schedule, *, start: date, last: date | None, today: date,
    grace_days: int = DEFAULT_GRACE_DAYS, due_soon_days: int = DEFAULT_DUE_SOON_DAYS,
) -> dict[str, Any]:
    """Due date, status and any notice of one requirement for one patient on `today`."""
    due, notice = due_on(schedule, start=start, last=last, today=today)
    result: dict[str, Any] = {"due": due, "status": status(due, today, grace_days=grace_days, due_soon_days=due_soon_days)}
    if notice:
        result["notice"] = notice
    return result
