"""The one sanity rule for every date or time a user types (issue 3: collection dates of
1900-01-01 and 0001-01-01 were saved). Pure Python: values in, a message or None out;
`today` and `now` are passed in (style.md 3.1). Forms apply it through
patients.forms.SaneDatesMixin; services that take a planned date call it too.

The limits, and why:

- FLOOR, 1 Jan 1900: no clinical fact of a living patient is older; it catches the
  0001-01-01 and 1900-01-01 placeholders and keeps date arithmetic far from date.min.
- A date of birth at most OLDEST_AGE_YEARS (120) years back: older is a typo.
- Nothing before the patient's date of birth.
- A date that records something that happened: not after today (DATE_SKEW = 0 days).
  "Today" is the clinic's own date, so there is no skew between the user's calendar and
  the check to allow for; a day of slack would let a dose change be back-dated into
  tomorrow, which the app refuses on purpose (record it on the day it takes effect).
- A date and time: at most DATETIME_SKEW (5 minutes) ahead of now: clocks of the
  laboratory system, the user's device and the server differ by minutes, not hours.
- A planned date (plan start, resume, end of a medicine, snooze): at most HORIZON
  (365 days) ahead: plans are weeks ahead, a later year is a typo of the year, and it
  keeps "start + N days" far from date.max (9999-12-31 used to overflow into a 500).
- A clinical date more than LONG_BEFORE_COURSE (365 days) before the patient's first
  course: a warning the user overrides by ticking "I confirm this date"; such a date is
  possible (an old result entered for history) but more often a mistyped year.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

FLOOR = date(1900, 1, 1)
OLDEST_AGE_YEARS = 120
DATE_SKEW = timedelta(days=0)
DATETIME_SKEW = timedelta(minutes=5)
HORIZON = timedelta(days=365)
LONG_BEFORE_COURSE = timedelta(days=365)


def _show(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def birth_date_problem(value: date, *, today: date) -> str | None:
    earliest = date(today.year - OLDEST_AGE_YEARS, 1, 1)
    if value < earliest:
        return f"A date of birth before {_show(earliest)} ({OLDEST_AGE_YEARS} years ago) is not plausible: check the year."
    if value > today + DATE_SKEW:
        return f"This date cannot be in the future (today is {_show(today)})."
    return None


def date_problem(value: date, *, today: date, born: date | None = None, planned: bool = False) -> str | None:
    """Why `value` cannot be right, or None. `planned`: the date may lie ahead (a plan, a
    resume or end date), up to HORIZON."""
    if value < FLOOR:
        return f"This date is before {FLOOR.year}: check the year."
    if born is not None and value < born:
        return f"This date is before the patient's date of birth ({_show(born)})."
    if planned:
        latest = today + HORIZON
        if value > latest:
            return f"This date is more than a year ahead (the latest is {_show(latest)}): check the year."
    elif value > today + DATE_SKEW:
        return f"This date cannot be in the future (today is {_show(today)})."
    return None


def datetime_problem(value: datetime, *, now: datetime, born: date | None = None) -> str | None:
    """As date_problem for a moment that has happened. `value` is aware, in the local
    time the user typed it in; its calendar day is compared with the floor and birth."""
    day = value.date()
    if day < FLOOR:
        return f"This date is before {FLOOR.year}: check the year."
    if born is not None and day < born:
        return f"This date is before the patient's date of birth ({_show(born)})."
    minutes = int(DATETIME_SKEW.total_seconds() // 60)
    if value > now + DATETIME_SKEW:
        return f"This time is in the future (more than {minutes} minutes ahead of now)."
    return None


def long_before_course(value: date, *, course_start: date | None) -> str | None:
    """A warning, not a refusal: the user may confirm the date."""
    if course_start is None or value >= course_start - LONG_BEFORE_COURSE:
        return None
    return (f"This date is more than a year before the treatment course began ({_show(course_start)}). "
            "If it is right, tick \u201cI confirm this date\u201d and save again.")
