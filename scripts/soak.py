"""make soak: the load cases of reliability.md §A7 (L1, L3, L5) on a stack of our own.

A PostgreSQL cluster and a Redis server on spare ports, a generated cohort (by default
clinics of 1k, 10k and 90k patients with 20 results each: `manage.py generate_cohort`),
gunicorn with 2 workers, one Celery worker and beat on a compressed schedule (monitoring
tick every 10 s, heartbeat every 5 s). Four clients sign in and request the worklist, the
patient list and patient pages for --minutes. Every 10 s it samples the web and worker
memory, the database connections and Redis. It prints a table and writes it to
var/soak-report.md; the exit status is 1 when a case fails.

Cases:
- L1 load held: no errors; p95 of the last minute within 1.5× the first minute's; web and
  worker memory and database connections flat (last ≤ 1.3× first, +5 connections);
- L3 digests during the load: every staff member with overdue items gets exactly one
  digest (into the SMTP sink), no duplicates;
- L5 beat and worker soak: the tick ran every interval; Redis keys and unacked messages stay
  bounded; no duplicate digests.
- L4 a 100k-row CSV import under load: a nurse of the 90k clinic uploads a CSV of 100,000
  results (5,000 patients × 4 collection times × 5 analytes) while the clients run; it is
  checked and saved by the importer worker (its own queue), every row is created, and L1's
  figures hold meanwhile (idempotent re-upload: make test and make bulk).
L2 (the overdue scan under load) runs inside L5's ticks.

Usage: python scripts/soak.py [--clinics 1000,10000,90000] [--results 20] [--minutes 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, SmtpSink, Stack, rss_kib  # noqa: E402

PASSWORD = "generated-cohort-password"


def sign_in(stack: Stack, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(stack.url("/login/"), timeout=30)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if found is None:
        raise RuntimeError(f"no sign-in form at /login/ (status {page.status_code})")
    token = found.group(1)
    response = session.post(stack.url("/login/"), data={"username": username, "password": PASSWORD,
                                                        "csrfmiddlewaretoken": token},
                            headers={"Referer": stack.url("/login/")}, timeout=30, allow_redirects=False)
    if response.status_code != 302:
        raise RuntimeError(f"could not sign in as {username}: {response.status_code}")
    return session


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20)[-1]


def client_loop(stack, sizes, patient_ids, stop_at, results, seed) -> None:
    rng = random.Random(seed)
    small = min(sizes)
    sessions = {size: sign_in(stack, f"nurse.gen-{size}") for size in sizes}
    while time.monotonic() < stop_at:
        kind = rng.choice(["worklist", "patients", "patient", "patient"])
        if kind == "worklist":
            session, path = sessions[small], "/"
        elif kind == "patients":
            session, path = sessions[small], "/patients/"
        else:
            size = rng.choice(sizes)
            session, path = sessions[size], f"/patients/{rng.choice(patient_ids[size])}/"
        started = time.monotonic()
        try:
            status = session.get(stack.url(path), timeout=120).status_code
        except requests.RequestException:
            status = 0
        results.append((started, time.monotonic() - started, status, kind))


def import_csv(stack: Stack, size: int) -> bytes:
    """100,000 rows for 5,000 patients of the gen-<size> clinic, at times no generated result has."""
    mrns = stack.psql(f"SELECT p.mrn FROM patients_patient p JOIN accounts_clinic c ON c.id = p.clinic_id "
                      f"WHERE c.code = 'gen-{size}' ORDER BY p.id LIMIT 5000").split()
    analytes = [("1742-6", "U/L", "5-40"), ("1920-8", "U/L", "5-40"), ("1975-2", "mg/dL", "0.2-1.2"),
                ("2160-0", "mg/dL", "0.5-1.2"), ("2157-6", "U/L", "20-200")]
    lines = ["MRN,Test,Result,Units,Reference range,Collected at"]
    for i, mrn in enumerate(mrns):
        for t in range(4):
            for j, (code, unit, ref) in enumerate(analytes):
                value = 20 + (i * 7 + t * 13 + j) % 30 if unit == "U/L" else round(0.5 + ((i + t + j) % 7) / 10, 1)
                lines.append(f"{mrn},{code},{value},{unit},{ref},2026-10-{3 + t * 5:02d} 06:{37 + t:02d}")
    return ("\n".join(lines) + "\n").encode()


def import_loop(stack: Stack, size: int, content: bytes, outcome: dict) -> None:
    """L4: upload, map, check, confirm, as a nurse would, polling the page until done."""
    started = time.monotonic()
    try:
        session = sign_in(stack, f"nurse.gen-{size}")
        page = session.get(stack.url("/patients/imports/"), timeout=60)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        clinic = re.search(r'name="clinic" value="(\d+)"', page.text)
        data = {"csrfmiddlewaretoken": token, **({"clinic": clinic.group(1)} if clinic else {})}
        response = session.post(stack.url("/patients/imports/"), data=data, files={"file": ("l4.csv", content)},
                                headers={"Referer": stack.url("/patients/imports/")}, timeout=300)
        detail = response.url
        page = session.get(detail, timeout=60).text
        form = {m.group(1): m.group(2) for m in re.finditer(r'<select name="(col_\w+)"[^>]*>.*?<option value="(\d*)" selected',
                                                                  page, re.S)}
        session.post(detail + "check/", data={**form, "date_format": "iso", "csrfmiddlewaretoken": token},
                     headers={"Referer": detail}, timeout=300)
        outcome["check_s"] = _wait_state(session, detail, "Checked (dry run)", started)
        session.post(detail + "confirm/", data={"csrfmiddlewaretoken": token}, headers={"Referer": detail}, timeout=300)
        outcome["save_s"] = _wait_state(session, detail, "<strong>Saved</strong>", started) - outcome["check_s"]
        outcome["page"] = session.get(detail, timeout=60).text
    except Exception as exc:  # noqa: BLE001 - reported as the case's outcome
        outcome["error"] = repr(exc)


def _wait_state(session: requests.Session, url: str, text: str, started: float, timeout: float = 3600) -> float:
    while time.monotonic() - started < timeout:
        page = session.get(url, timeout=60).text
        if text in page:
            return time.monotonic() - started
        if "<strong>Failed</strong>" in page:
            raise RuntimeError("the import failed")
        time.sleep(5)
    raise RuntimeError(f"not {text!r} within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clinics", default="1000,10000,90000")
    parser.add_argument("--results", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.clinics.split(",")]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="soak-"))
    rows: list[tuple[str, str, str, str]] = []
    with SmtpSink() as sink, Stack(workdir, extra_env={
        "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "MONITORING_TICK_SECONDS": "10",
        "HEARTBEAT_INTERVAL_SECONDS": "5", "SITE_URL": "http://127.0.0.1"}) as stack:
        print(f"[soak] stack in {workdir}: postgres :{stack.pg_port}, redis :{stack.redis_port}")
        stack.manage("migrate", "--noinput", "-v0")
        stack.manage("collectstatic", "--noinput", "-v0")
        t = time.monotonic()
        print(stack.manage("generate_cohort", "--clinics", args.clinics, "--results", str(args.results)).strip())
        print(f"[soak] cohort generated in {time.monotonic() - t:.0f} s")
        # Every clinic sends its digest now (L3): digest time 00:00 local.
        stack.psql("UPDATE monitoring_clinicsettings SET digest_time = '00:00'")
        stack.psql("INSERT INTO monitoring_clinicsettings (clinic_id, due_soon_days, grace_days, escalation_days, "
                   "digest_time, digest_counts_only) SELECT id, 3, 0, 3650, '00:00', false FROM accounts_clinic "
                   "WHERE id NOT IN (SELECT clinic_id FROM monitoring_clinicsettings)")
        patient_ids = {size: [int(x) for x in stack.psql(
            f"SELECT p.id FROM patients_patient p JOIN accounts_clinic c ON c.id = p.clinic_id "
            f"WHERE c.code = 'gen-{size}' ORDER BY random() LIMIT 200").split()] for size in sizes}
        stack.start_web()
        worker = stack.start_worker()
        stack.start_worker("importer", queues="imports")
        stack.start_beat()
        web = stack.procs["web"]
        big = max(sizes)
        l4: dict = {}
        importer = threading.Thread(target=import_loop, args=(stack, big, import_csv(stack, big), l4))
        importer.start()

        samples = []
        results: list[tuple[float, float, int, str]] = []
        started = time.monotonic()
        stop_at = started + args.minutes * 60
        threads = [threading.Thread(target=client_loop, args=(stack, sizes, patient_ids, stop_at, results, i))
                   for i in range(args.clients)]
        for th in threads:
            th.start()
        while time.monotonic() < stop_at:
            samples.append({
                "t": time.monotonic() - started, "web_kib": rss_kib(web.pid), "worker_kib": rss_kib(worker.pid),
                "connections": int(stack.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'stack'") or 0),
                "redis_keys": _redis(stack, "DBSIZE"), "unacked": _redis(stack, "HLEN", "unacked"),
            })
            time.sleep(10)
        for th in threads:
            th.join()

        errors = [r for r in results if r[2] != 200]
        first = [r[1] for r in results if r[0] - started < 60]
        last = [r[1] for r in results if r[0] > stop_at - 60]
        drift = p95(last) / p95(first) if first and last else float("nan")
        # Flat after warm-up: the first minute loads code and the first digests (a plateau, not a leak).
        warm = [x for x in samples if x["t"] >= 60] or samples
        s0, s1 = warm[0], samples[-1]
        (workdir / "soak-samples.json").write_text(__import__("json").dumps(samples, indent=1))
        flat = (s1["web_kib"] <= 1.3 * s0["web_kib"] and s1["worker_kib"] <= 1.3 * s0["worker_kib"]
                and s1["connections"] <= s0["connections"] + 5)
        ok_l1 = not errors and drift <= 1.5 and flat
        rows.append(("L1", f"{args.clients} clients × {args.minutes:g} min on {args.clinics} patients",
                     "pass" if ok_l1 else "FAIL",
                     f"{len(results)} requests, {len(errors)} errors; p95 first/last minute "
                     f"{p95(first):.2f}/{p95(last):.2f} s (×{drift:.2f}); after the first minute web RSS {s0['web_kib'] // 1024}→"
                     f"{s1['web_kib'] // 1024} MiB, worker {s0['worker_kib'] // 1024}→{s1['worker_kib'] // 1024} MiB; "
                     f"DB connections {s0['connections']}→{s1['connections']}"))
        by_kind = {k: p95([r[1] for r in results if r[3] == k]) for k in ("worklist", "patients", "patient")}
        rows.append(("L1·pages", "p95 per page over the whole run", "info",
                     ", ".join(f"{k} {v:.2f} s" for k, v in by_kind.items())))

        time.sleep(15)  # let the last sends finish
        digests = stack.psql("SELECT count(*), count(*) FILTER (WHERE status = 'sent'), "
                             "count(DISTINCT (recipient_id, clinic_id, kind, for_date)) FROM monitoring_digest")
        total, sent, distinct = (int(x) for x in digests.split("|"))
        staff = len(sizes)  # one staff member per generated clinic
        ok_l3 = sent == total == distinct >= staff and len(sink.messages) == sent
        rows.append(("L3", "daily digests while the load runs", "pass" if ok_l3 else "FAIL",
                     f"{total} digest rows, {sent} sent, {len(sink.messages)} in the sink, "
                     f"{distinct} distinct (recipient, clinic, kind, day)"))
        ticks = int(stack.psql("SELECT runs FROM monitoring_heartbeat WHERE name = 'monitoring_tick'") or 0)
        expected = int(args.minutes * 60 / 10)
        bounded = max(s["redis_keys"] for s in samples) < 50 and max(s["unacked"] for s in samples) < 20
        ok_l5 = ticks >= expected * 0.6 and bounded and ok_l3
        rows.append(("L5", "beat + worker, tick every 10 s", "pass" if ok_l5 else "FAIL",
                     f"{ticks} ticks of ~{expected}; Redis keys max {max(s['redis_keys'] for s in samples)}, "
                     f"unacked max {max(s['unacked'] for s in samples)}; no duplicate digests"))
        rows.append(("L2", "overdue scan under load", "pass" if ok_l1 and ticks else "FAIL",
                     "each tick flags and plans while the clients run (within L1's figures)"))
        importer.join()
        imported = int(stack.psql("SELECT count(*) FROM patients_labresult WHERE source = 'csv'") or 0)
        counts = re.search(r'data-testid="import-counts".*?(\d+) created', l4.get("page", ""), re.S)
        ok_l4 = "error" not in l4 and imported == 100000
        rows.append(("L4", "100k-row CSV import under load", "pass" if ok_l4 else "FAIL",
                     l4.get("error") or f"{imported:,} results saved (page: {counts.group(1) if counts else '?'} created); "
                     f"dry run done after {l4.get('check_s', 0):.0f} s, saved {l4.get('save_s', 0):.0f} s later, "
                     "while the clients ran"))

    table = ["| case | what | outcome | figures |", "| --- | --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    report = "\n".join(table)
    print(report)
    out = ROOT / "var" / "soak-report.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"# Soak {time.strftime('%Y-%m-%d %H:%M')}\n\n{report}\n")
    print(f"[soak] written to {out}")
    return 0 if all(r[2] in ("pass", "info", "not run") for r in rows) else 1


def _redis(stack: Stack, *command: str) -> int:
    import subprocess

    out = subprocess.run(["redis-cli", "-p", str(stack.redis_port), *command], capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.strip() or 0)
    except ValueError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
