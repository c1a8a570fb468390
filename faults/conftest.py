"""make faults: faults injected into real processes that the harness starts on loopback
(scripts/stack.py: its own PostgreSQL cluster and Redis on spare ports, gunicorn, a Celery
worker, an SMTP sink). Each test names its case of reliability.md §A7; the run ends with a
table of every case and its outcome (also written to var/faults-report.md)."""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from stack import SmtpSink, Stack  # noqa: E402

PASSWORD = "generated-cohort-password"
OUTCOMES: dict[str, tuple[str, str]] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "case(id, what): the reliability.md §A7 case a fault test proves")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("case")
    if marker and (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
        OUTCOMES[marker.args[0]] = (marker.args[1], report.outcome)


def pytest_terminal_summary(terminalreporter):
    if not OUTCOMES:
        return
    lines = ["| case | fault | outcome |", "| --- | --- | --- |"]
    key = lambda c: (c[0], int(re.sub(r"\D", "", c) or 0))  # noqa: E731
    lines += [f"| {case} | {what} | {outcome} |" for case, (what, outcome) in sorted(OUTCOMES.items(), key=lambda i: key(i[0]))]
    table = "\n".join(lines)
    terminalreporter.write_sep("=", "reliability.md §A7 cases")
    terminalreporter.write_line(table)
    out = ROOT / "var" / "faults-report.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"# Faults {time.strftime('%Y-%m-%d %H:%M')}\n\n{table}\n")


@pytest.fixture(scope="session")
def sink():
    with SmtpSink() as s:
        yield s


@pytest.fixture(scope="session")
def stack(sink):
    workdir = Path(tempfile.mkdtemp(prefix="faults-"))
    env = {"EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "CELERY_VISIBILITY_TIMEOUT": "20",
           "HEARTBEAT_INTERVAL_SECONDS": "3", "MONITORING_TICK_SECONDS": "3600", "SITE_URL": "http://127.0.0.1",
           "EMAIL_TIMEOUT": "3", "HEARTBEAT_STALE_SECONDS": "15"}
    with Stack(workdir, extra_env=env) as st:
        st.manage("migrate", "--noinput", "-v0")
        st.manage("collectstatic", "--noinput", "-v0")
        st.manage("generate_cohort", "--clinics", "60", "--results", "4")
        st.psql("INSERT INTO monitoring_clinicsettings (clinic_id, due_soon_days, grace_days, escalation_days, "
                "digest_time, digest_counts_only, fill_check_days, patient_phone) "
                "SELECT id, 3, 0, 3650, '00:00', false, 7, '' FROM accounts_clinic")
        # psql reports a failed statement on stderr only: without these rows the clinics get
        # the default digest time, and the digest cases pass or fail with the time of day.
        assert st.psql("SELECT count(*) FROM monitoring_clinicsettings WHERE digest_time = '00:00'") == \
            st.psql("SELECT count(*) FROM accounts_clinic"), "the clinics' digest settings were not written"
        st.start_web()
        st.start_worker()
        yield st


@pytest.fixture
def nurse_session(stack):
    session = requests.Session()
    page = session.get(stack.url("/login/"), timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(stack.url("/login/"), data={"username": "nurse.gen-60", "password": PASSWORD,
                                             "csrfmiddlewaretoken": token}, timeout=30)
    return session


def wait_until(check, timeout: float = 60, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not true within {timeout:.0f} s: {check}")
