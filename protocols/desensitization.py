"""Desensitization (re-challenge) schedules after alectinib rash. Pure Python.

Source: ../shared/clinical-reference.md §9. A protocol is ordered steps {morning mg,
evening mg, days}; the plan's calendar is computed from them (§9.3 requirement 2). Doses
are made from whole capsules of the strengths the clinic stocks (150 mg in the US/EU;
20, 40 and 150 mg in Japan, §2, §9.1); capsules are never opened (label), so a dose that
cannot be made is flagged before approval (e.g. Anderson's 37.5 mg).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from protocols.errors import InputError

SCAR_SOURCE = "Reference §9.3 (S13: re-exposure contraindicated after SJS/TEN; SEED-A: SJS, TEN, DRESS)"
TOLERANCE_WARNING = ("Tolerance is temporary and kept only by continuous dosing; a missed dose can bring the "
                     "reaction back (reference §9.3, SEED-A, not confirmed). A prescriber decides whether to repeat the "
                     "step, step back or restart from step 1 before the next step (§9.3 requirement 3, A10).")
CHECKPOINT_NOTE = ("Prior PD-1 blockade (half-life about 22 days) may have worsened alectinib skin toxicity in reported "
                   "cases; the washout is recorded for the prescriber (reference §9.1, S11, S17).")
FAILED_INFORMATION = ("Reported after a failed re-challenge: switching to another ALK inhibitor (brigatinib, lorlatinib) "
                      "— information only, reference §9.1 (S11).")
REACTION_GUIDANCE = ("A reaction during desensitization: give no further doses until a prescriber has decided, and tell "
                     "the prescriber now. There is no automatic step-down: the prescriber decides whether to repeat the "
                     "step, step back, restart or stop (reference §9.3 requirement 5). Blistering, mucosal sores or skin "
                     "peeling point to SJS/TEN, after which re-exposure is contraindicated (§8.6, §9.3).")

# Twice-daily doses are about 12 hours apart, the evening one with the evening meal. Before
# 16:00 on the clinic's clock the evening dose of that day cannot have been taken, so it
# cannot be recorded (issue 8: the evening dose was recorded in the morning). 16:00 leaves
# room for an early evening meal and is well past any morning dose.
EVENING_DOSE_FROM = time(16, 0)


@dataclass(frozen=True)
class Step:
    morning_mg: int
    evening_mg: int
    days: int


@dataclass(frozen=True)
class Day:
    number: int  # 1-based
    day: date
    step: int  # 1-based
    morning_mg: int
    evening_mg: int


def validate_steps(steps: list[Step]) -> None:
    if not steps:
        raise InputError("A protocol needs at least one step.")
    for i, s in enumerate(steps, start=1):
        if s.days < 1:
            raise InputError(f"Step {i}: the number of days must be at least 1.")
        if s.morning_mg < 0 or s.evening_mg < 0 or (s.morning_mg == 0 and s.evening_mg == 0):
            raise InputError(f"Step {i}: give a morning or an evening dose.")
        if max(s.morning_mg, s.evening_mg) > 600:
            raise InputError(f"Step {i}: doses above 600 mg are outside the label (reference §10).")


def evening_dose_from(day: date, zone: tzinfo) -> datetime:
    """The first moment the evening dose of `day` can be recorded as taken or missed."""
    return datetime.combine(day, EVENING_DOSE_FROM, tzinfo=zone)


def calendar(steps: list[Step], start: date, *, from_step: int = 1, first_day_number: int = 1) -> list[Day]:
    """Day by day from `from_step` on, starting on `start`."""
    validate_steps(steps)
    days, n, when = [], first_day_number, start
    for k, step in enumerate(steps, start=1):
        if k < from_step:
            continue
        for _ in range(step.days):
            days.append(Day(n, when, k, step.morning_mg, step.evening_mg))
            n += 1
            when += timedelta(days=1)
    return days


def capsules(dose_mg: int, strengths: list[int]) -> list[int] | None:
    """The fewest whole capsules that make `dose_mg` exactly, largest first, or None."""
    if dose_mg == 0:
        return []
    best: list[list[int] | None] = [[]] + [None] * dose_mg
    for total in range(1, dose_mg + 1):
        for s in sorted(set(strengths), reverse=True):
            prev = best[total - s] if s <= total else None
            current = best[total]
            if prev is not None and (current is None or len(prev) + 1 < len(current)):
                best[total] = [*prev, s]
    found = best[dose_mg]
    return sorted(found, reverse=True) if found is not None else None


def describe_capsules(dose_mg: int, strengths: list[int]) -> str:
    combo = capsules(dose_mg, strengths)
    if combo is None:
        return f"cannot be made from {', '.join(map(str, sorted(strengths)))} mg capsules"
    if not combo:
        return "no dose"
    parts = []
    for s in sorted(set(combo), reverse=True):
        n = combo.count(s)
        parts.append(f"{n} × {s} mg")
    return " + ".join(parts)


def unmakeable(steps: list[Step], strengths: list[int]) -> list[str]:
    """Messages for every step dose that the stocked strengths cannot make."""
    problems = []
    for i, s in enumerate(steps, start=1):
        for when, mg in (("morning", s.morning_mg), ("evening", s.evening_mg)):
            if mg and capsules(mg, strengths) is None:
                problems.append(f"Step {i} {when} dose {mg} mg cannot be made from "
                                f"{', '.join(map(str, sorted(strengths)))} mg capsules (capsules are not opened).")
    return problems


def final_dose(steps: list[Step]) -> int:
    """The twice-daily dose the plan ends on: the last step's larger dose."""
    last = steps[-1]
    return max(last.morning_mg, last.evening_mg)
