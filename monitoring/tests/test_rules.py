"""Schedule rules from ../shared/clinical-reference.md §5 and its conventions. No database.

Phase boundaries with start 2026-01-05: the LFT phase 1 ends 2026-04-05 (3 calendar
months = day 90); the CPK month ends 2026-02-05 (day 31). With start 2026-01-31 the CPK
month ends 2026-02-28 (day 28).
"""

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from monitoring import rules
from monitoring.rules import DEFAULT_REQUIREMENTS, Phase, Schedule, add_months, evaluate, next_due, overdue_from, status
from protocols.errors import InputError

LFT = next(r for r in DEFAULT_REQUIREMENTS if r.code == "lft").schedule
CPK = next(r for r in DEFAULT_REQUIREMENTS if r.code == "cpk").schedule
START = date(2026, 1, 5)


def d(s):
    return date.fromisoformat(s)


NEXT_DUE = [
    # (schedule, start, last test, expected due, why)
    (LFT, START, None, "2026-01-19", "§5.3 no test yet: day 14"),
    (LFT, START, "2026-01-04", "2026-01-19", "§5.3 a pre-treatment test does not count"),
    (LFT, START, "2026-02-02", "2026-02-16", "§5.2 phase 1: +14 days"),
    (LFT, START, "2026-03-16", "2026-03-30", "§5.2 day 70 -> day 84, still phase 1"),
    (LFT, START, "2026-03-21", "2026-04-04", "§5.2 day 75 -> day 89, last day of phase 1"),
    (LFT, START, "2026-03-22", "2026-04-22", "§5.3 day 76 +14 = day 90 is phase 2: +1 month instead"),
    (LFT, START, "2026-03-30", "2026-04-30", "§5.3 a test late in month 3 is next due a month later"),
    (LFT, START, "2026-05-31", "2026-06-30", "§5.2 phase 2: +1 calendar month (31 May -> 30 Jun)"),
    (LFT, date(2026, 1, 31), "2026-05-31", "2026-06-30", "calendar month clamps to the month's end"),
    (CPK, START, None, "2026-01-19", "§5.5 no CPK yet: day 14"),
    (CPK, START, "2026-01-19", "2026-02-02", "§5.5 day 14 -> day 28, inside the first month"),
    (CPK, START, "2026-01-21", "2026-02-04", "§5.5 day 16 -> day 30, the month's last day"),
    (CPK, START, "2026-01-22", None, "§5.5 day 17 -> day 31 is past the first month: nothing due"),
    (CPK, date(2026, 1, 31), "2026-02-14", None, "§5.5 February: day 14 + 14 = day 28 = month end, nothing due"),
    (CPK, date(2026, 1, 31), "2026-02-13", "2026-02-27", "§5.5 February: day 13 -> day 27"),
    (Schedule(), START, None, None, "no interval (clinic policy not set): not scheduled"),
]


@pytest.mark.parametrize(("schedule", "start", "last", "expected", "why"), NEXT_DUE, ids=[n[4] for n in NEXT_DUE])
def test_next_due(schedule, start, last, expected, why):
    assert next_due(schedule, start, d(last) if last else None) == (d(expected) if expected else None), why


STATUS = [
    # (due, today, grace, window, expected, why)
    ("2026-02-16", "2026-02-16", 0, 3, "due_soon", "§5.4 due today is not overdue"),
    ("2026-02-16", "2026-02-17", 0, 3, "overdue", "§5.4 strictly after the due date"),
    ("2026-02-16", "2026-02-18", 2, 3, "due_soon", "grace 2: two days late is not yet overdue"),
    ("2026-02-16", "2026-02-19", 2, 3, "overdue", "grace 2: the third day late is"),
    ("2026-02-16", "2026-02-13", 0, 3, "due_soon", "window 3: three days before"),
    ("2026-02-16", "2026-02-12", 0, 3, "ok", "window 3: four days before"),
    (None, "2026-02-12", 0, 3, "not_required", "no due date"),
]


@pytest.mark.parametrize(("due", "today", "grace", "window", "expected", "why"), STATUS, ids=[s[5] for s in STATUS])
def test_status(due, today, grace, window, expected, why):
    assert status(d(due) if due else None, d(today), grace_days=grace, due_soon_days=window) == expected, why


def test_the_issue_example():
    lft = evaluate(LFT, start=START, last=d("2026-02-02"), today=d("2026-02-20"))
    cpk = evaluate(CPK, start=START, last=d("2026-01-19"), today=d("2026-02-20"))
    assert lft == {"due": d("2026-02-16"), "status": "overdue"}
    assert cpk["due"] is None and cpk["status"] == "not_required"
    assert "missed" in cpk["notice"]  # one-time notice, not a recurring overdue flag (§5.5)


def test_missed_cpk_is_overdue_inside_the_month_and_a_notice_after():
    inside = evaluate(CPK, start=START, last=d("2026-01-19"), today=d("2026-02-04"))
    assert inside == {"due": d("2026-02-02"), "status": "overdue"}
    after = evaluate(CPK, start=START, last=d("2026-01-19"), today=d("2026-02-05"))
    assert after["status"] == "not_required" and "notice" in after


def test_cpk_done_on_time_gives_no_notice():
    result = evaluate(CPK, start=START, last=d("2026-02-03"), today=d("2026-02-20"))
    assert result == {"due": None, "status": "not_required"}


def test_overdue_from_applies_grace_and_snooze():
    assert overdue_from(d("2026-02-16")) == d("2026-02-17")
    assert overdue_from(d("2026-02-16"), grace_days=2) == d("2026-02-19")
    assert overdue_from(d("2026-02-16"), snoozed_until=d("2026-02-20")) == d("2026-02-21")
    assert overdue_from(None) is None


def test_add_months_clamps():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"phases": [{"months": 3}]}, "exactly one of every_days or every_months"),
        ({"phases": [{"months": 0, "every_days": 14}]}, "at least 1"),
        ({"phases": [{"months": None, "every_days": 14}, {"months": 2, "every_days": 7}]}, "Only the last phase"),
    ],
)
def test_bad_schedule_is_refused(data, message):
    with pytest.raises(InputError, match=message):
        Schedule.from_dict(data)


def test_schedule_round_trips():
    s = Schedule((Phase(3, every_days=14), Phase(None, every_months=1)))
    assert Schedule.from_dict(s.as_dict()) == s
    assert Schedule.from_dict(rules.CHECK_IN_SCHEDULE.as_dict()) == rules.CHECK_IN_SCHEDULE


# Issue #16: check-ins on day 7 and day 14, then every 4 weeks (clinic policy; the
# reference has no interval). (last check-in as a day number or None, next due day number)
CHECK_IN_CASES = [
    (None, 7), (3, 10), (7, 14), (8, 36),  # 8 + 7 = 15 is past the 15-day phase: 8 + 28
    (14, 42), (20, 48), (42, 70), (70, 98),
]


@pytest.mark.parametrize(("last", "due"), CHECK_IN_CASES)
def test_check_in_schedule(last, due):
    start = date(2026, 1, 31)
    last_day = start + timedelta(days=last) if last is not None else None
    assert rules.next_due(rules.CHECK_IN_SCHEDULE, start, last_day) == start + timedelta(days=due)


def test_a_phase_of_days_and_a_phase_of_months_add_up():
    s = Schedule((Phase(None, every_days=7, days=10), Phase(1, every_days=14), Phase(None, every_months=1)))
    bounds = s.bounds(date(2026, 1, 31))
    assert [b[1] for b in bounds] == [date(2026, 2, 10), date(2026, 3, 10), None]


@pytest.mark.parametrize("phase", [{"months": 1, "days": 3, "every_days": 7}, {"days": 0, "every_days": 7},
                                   {"days": True, "every_days": 7}])
def test_a_phase_length_is_months_or_days(phase):
    with pytest.raises(InputError):
        Schedule.from_dict({"phases": [phase, {"months": None, "every_days": 28}]})


def test_defaults_in_the_migration_match_the_rules():
    from importlib import import_module

    migration = import_module("monitoring.migrations.0003_default_requirements")
    check_in = import_module("monitoring.migrations.0014_check_in_requirement")
    rows = [*migration.DEFAULTS, check_in.CHECK_IN]
    for (code, label, analytes, schedule, source, label_interval), req in zip(rows, DEFAULT_REQUIREMENTS, strict=True):
        assert (code, label, tuple(analytes), source, label_interval) == (req.code, req.label, req.analytes, req.source, req.label_interval)
        assert Schedule.from_dict(schedule) == req.schedule


def test_retry_delay_grows_and_is_capped():
    from monitoring import rules

    assert rules.retry_delay(1) == timedelta(minutes=1)
    assert rules.retry_delay(2) == timedelta(minutes=2)
    assert rules.retry_delay(20) == timedelta(hours=1)
    assert rules.retry_delay(20, 0.2) == timedelta(hours=1.2)
    assert rules.retry_delay(20, 5) == timedelta(hours=1.2), "jitter is bounded"


# --- the command ------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _command(stdin: str):
    return subprocess.run([sys.executable, "manage.py", "monitoring_due", "-"], input=stdin, cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "VAR_DIR": "/tmp/monitoring-due-test"})


def test_monitoring_due_command_prints_the_issue_example():
    case = {"treatment_start": "2026-01-05", "today": "2026-02-20", "grace_days": 0,
            "last_tests": {"lft": "2026-02-02", "cpk": "2026-01-19"}}
    result = _command(json.dumps(case))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["lft"] == {"due": "2026-02-16", "status": "overdue"}
    assert out["cpk"]["due"] is None and out["cpk"]["status"] == "not_required"
    assert out["vitals"] == {"due": None, "status": "not_required"}
    assert set(out) == {r.code for r in DEFAULT_REQUIREMENTS}


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{nope", "malformed JSON"),
        ('{"today": "2026-02-20"}', "treatment_start is required"),
        ('{"treatment_start": "2026-13-01", "today": "2026-02-20"}', "YYYY-MM-DD"),
        ('{"treatment_start": "2026-01-05", "today": "2026-02-20", "last_tests": {"ecg": "2026-02-01"}}', "Unknown requirement"),
        ('{"treatment_start": "2026-01-05", "today": "2026-02-20", "grace_days": -1}', "grace_days"),
        ('{"treatment_start": "2026-03-05", "today": "2026-02-20"}', "before treatment_start"),
    ],
)
def test_monitoring_due_command_bad_input_exits_2(stdin, message):
    result = _command(stdin)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_satisfied_days_need_every_analyte_of_the_requirement_on_the_same_day():
    from monitoring.rules import satisfied_days

    by_day = {d("2026-02-02"): {"alt", "ast", "total_bilirubin"}, d("2026-02-10"): {"alt"},
              d("2026-01-01"): {"alt", "ast", "total_bilirubin", "cpk"}}
    assert satisfied_days(by_day, ["alt", "ast", "total_bilirubin"]) == [d("2026-01-01"), d("2026-02-02")]
    assert satisfied_days(by_day, ["alt", "ast", "total_bilirubin"], since=START) == [d("2026-02-02")]
