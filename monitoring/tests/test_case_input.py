"""The `monitoring_due` input is validated whole: every bad input is one InputError naming
the field, never a traceback; dates stay far from the limits of date arithmetic. The fuzz
tests of the command itself are in protocols/tests/test_case_input.py. No database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.case_input import due_report
from monitoring.rules import DEFAULT_REQUIREMENTS
from protocols.case_input import LongNumber
from protocols.errors import InputError


def case(**extra):
    return {"treatment_start": "2026-01-05", "today": "2026-02-20", **extra}


def deep(depth, as_dict=False):
    value = 1
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


BAD = [
    ("not an object", [], "The case must be a JSON object"),
    ("string case", "2026-01-05", "The case must be a JSON object"),
    ("start missing", {"today": "2026-02-20"}, "treatment_start is required"),
    ("today missing", {"treatment_start": "2026-01-05"}, "today is required"),
    ("start near 9999-12-31", case(treatment_start="9999-12-30", today="9999-12-31"),
     "treatment_start must be between 1900-01-01 and 9000-12-31, not '9999-12-30'"),
    ("today 9999-12-31", case(today="9999-12-31"), "today must be between 1900-01-01 and 9000-12-31, not '9999-12-31'"),
    ("start 0001-01-01", case(treatment_start="0001-01-01"), "treatment_start must be between 1900-01-01 and 9000-12-31"),
    ("last test 0001-01-01", case(last_tests={"lft": "0001-01-01"}), "last_tests.lft must be between 1900-01-01"),
    ("last test 9001", case(last_tests={"cpk": "9001-01-01"}), "last_tests.cpk must be between"),
    ("month 13", case(treatment_start="2026-13-01"), "treatment_start must be a date as YYYY-MM-DD, not '2026-13-01'"),
    ("30 February", case(today="2026-02-30"), "today must be a date as YYYY-MM-DD"),
    ("compact date", case(today="20260220"), "today must be a date as YYYY-MM-DD, not '20260220'"),
    ("week date", case(today="2026-W08-5"), "today must be a date as YYYY-MM-DD"),
    ("date-time", case(today="2026-02-20T00:00"), "today must be a date as YYYY-MM-DD"),
    ("date as a number", case(today=20260220), "today must be a date as YYYY-MM-DD, not 20260220"),
    ("date as null", case(today=None), "today must be a date as YYYY-MM-DD, not null"),
    ("date as a list", case(today=["2026-02-20"]), "today must be a date as YYYY-MM-DD, not a list"),
    ("grace 2_40", case(grace_days="2_40"), "grace_days must be a whole number of days from 0 to 60, not '2_40'"),
    ("grace as string", case(grace_days="3"), "grace_days must be a whole number of days from 0 to 60, not '3'"),
    ("grace negative", case(grace_days=-1), "grace_days must be a whole number of days from 0 to 60, not -1"),
    ("grace 61", case(grace_days=61), "grace_days must be a whole number of days from 0 to 60, not 61"),
    ("grace float", case(grace_days=3.0), "grace_days must be a whole number of days from 0 to 60, not 3.0"),
    ("grace bool", case(grace_days=True), "grace_days must be a whole number of days from 0 to 60, not true"),
    ("grace NaN", case(grace_days=float("nan")), "grace_days must be a whole number of days from 0 to 60, not NaN"),
    ("grace 5,000 digits", case(grace_days=10**5000), "grace_days must be a whole number of days"),
    ("grace 5,000 JSON digits", case(grace_days=LongNumber("9" * 5000)), "not a number of 5000 digits"),
    ("due_soon null", case(due_soon_days=None), "due_soon_days must be a whole number of days from 0 to 60, not null"),
    ("last_tests a list", case(last_tests=["lft"]), "last_tests must be an object, not a list"),
    ("last_tests unknown", case(last_tests={"ecg": "2026-02-01"}), "last_tests: Unknown requirement(s): 'ecg'; known: lft"),
    ("last_tests null date", case(last_tests={"lft": None}), "last_tests.lft must be a date as YYYY-MM-DD, not null"),
    ("unknown key", case(surprise=1), "Unknown key 'surprise'; known: treatment_start"),
    ("today before start", case(today="2026-01-04"), "today is before treatment_start"),
    ("last test after today", case(last_tests={"lft": "2026-02-21"}), "last_tests.lft is after today"),
    ("deep list", deep(100_000), "The case must be a JSON object"),
    ("deep object as today", case(today=deep(100_000, as_dict=True)), "today must be a date as YYYY-MM-DD, not an object"),
    ("deep list as last_tests", case(last_tests=deep(100_000)), "last_tests must be an object, not a list"),
]


@pytest.mark.parametrize(("why", "data", "message"), BAD, ids=[row[0] for row in BAD])
def test_bad_input_is_one_line_naming_the_field(why, data, message):
    with pytest.raises(InputError) as info:
        due_report(data)
    text = str(info.value)
    assert message in text, why
    assert len(text.splitlines()) == 1 and text.isprintable()


def test_the_issue_example():
    out = due_report(case(grace_days=0, last_tests={"lft": "2026-02-02", "cpk": "2026-01-19"}))
    assert out["lft"] == {"due": "2026-02-16", "status": "overdue"}
    assert set(out) == {r.code for r in DEFAULT_REQUIREMENTS}


@pytest.mark.parametrize(
    ("start", "today"),
    [("1900-01-01", "1900-01-01"), ("1900-01-01", "9000-12-31"), ("9000-12-31", "9000-12-31"), ("9000-11-30", "9000-12-31")],
)
def test_the_boundary_dates_work_without_overflow(start, today):
    out = due_report({"treatment_start": start, "today": today, "grace_days": 60, "due_soon_days": 60,
                      "last_tests": {r.code: today for r in DEFAULT_REQUIREMENTS}})
    assert set(out) == {r.code for r in DEFAULT_REQUIREMENTS}


@settings(max_examples=60, deadline=None)
@given(start=st.dates(), days=st.integers(0, 3000), grace=st.integers(0, 60), soon=st.integers(0, 60))
def test_any_date_is_answered_or_refused_with_a_message(start, days, grace, soon):
    today = start.fromordinal(min(start.toordinal() + days, 3652059))
    data = {"treatment_start": start.isoformat(), "today": today.isoformat(), "grace_days": grace,
            "due_soon_days": soon, "last_tests": {"lft": today.isoformat()}}
    try:
        out = due_report(data)
    except InputError as exc:
        assert "between 1900-01-01 and 9000-12-31" in str(exc)
    else:
        assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"treatment_start": "2026-01-05", "today": "9999-12-31"}', "today must be between"),
        (b'{"treatment_start": "2026-01-05", "today": "2026-02-20", "grace_days": ' + b"9" * 5000 + b"}",
         "grace_days must be a whole number of days from 0 to 60, not a number of 5000 digits"),
        (b"\xff\xfe\x00", "the input is not UTF-8 text"),
        (b"[" * 100_000, "malformed JSON: it is nested too deeply"),
    ],
    ids=["9999", "5000-digits", "bytes", "deep"],
)
def test_the_command_exits_2_with_one_line(payload, message):
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
            call_command("monitoring_due", path, stdout=out)
    finally:
        os.unlink(path)
    assert info.value.code == 2 and out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monitoring_due: ") and message in lines[0], lines
