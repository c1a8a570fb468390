"""Cohort overview: dose levels now and over time, reductions, reasons, time on treatment,
and the share of monitoring done on time. A fixed number of queries for any cohort size;
the counting happens in Python over compact value lists."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from accounts.clinic_time import clinic_day_start, clinic_zone
from accounts.models import Clinic, User
from monitoring import rules
from monitoring.models import ClinicSettings, MonitoringItem, Requirement
from patients.models import CheckIn, DoseChangeEvent, LabResult, ProgramStatus, TreatmentCourse
from protocols.dosing import LEVELS, level_of


def _month_ends(today: date, months: int) -> list[date]:
    first = today.replace(day=1)
    return [*(rules.add_months(first, -i + 1) - timedelta(days=1) for i in range(months - 1, 0, -1)), today]


def _levels_over_time(courses, ends: list[date]) -> list[dict]:
    """The dose level of every course at each month end: the last event on or before it
    (the latest by id on the same day), counted by the database in one statement, a
    window function giving each event the date of the next (issue #14)."""
    inner, params = courses.order_by().values("pk").query.sql_with_params()
    months = ", ".join("(%s, %s)" for _ in ends)
    sql = f"""
        WITH ev AS (
            SELECT e.effective_date, e.to_state, e.to_dose_mg_bid,
                   LEAD(e.effective_date) OVER (PARTITION BY e.course_id ORDER BY e.effective_date, e.id) AS next_date
            FROM patients_dosechangeevent e WHERE e.course_id IN ({inner})
        ), months (m, idx) AS (VALUES {months})
        SELECT months.idx, ev.to_state, ev.to_dose_mg_bid, COUNT(*)
        FROM months JOIN ev ON ev.effective_date <= months.m AND (ev.next_date IS NULL OR ev.next_date > months.m)
        GROUP BY months.idx, ev.to_state, ev.to_dose_mg_bid"""
    counts: list[Counter[str]] = [Counter() for _ in ends]
    with connection.cursor() as cur:
        cur.execute(sql, [*params, *(v for i, end in enumerate(ends) for v in (end, i))])
        for idx, state, dose, n in cur.fetchall():
            if level := level_of(state, dose):
                counts[idx][level] += n
    return [{"month": end.strftime("%b %Y"), **{k: counts[i].get(k, 0) for k in LEVELS}} for i, end in enumerate(ends)]


# A toxicity event by the state it leads to.
_TOXICITY_KIND = {"withheld": "withhold", "on_drug": "reduction", "discontinued": "discontinuation"}


def _reductions(course_rows: list[dict], events: dict[int, list[dict]]) -> tuple[Counter, list[int], Counter]:
    """Reductions per course (0, 1, 2 or more), days to the first one, and the toxicity
    behind each withhold, reduction or discontinuation. A reduction is an event whose
    active dose is below the dose in use before."""
    per_course: Counter[int] = Counter()
    first_days: list[int] = []
    reasons: Counter[tuple[str, str]] = Counter()
    for c in course_rows:
        active, n = None, 0
        for e in events[c["pk"]]:
            if e["to_state"] == "on_drug":
                if active is not None and e["to_dose_mg_bid"] < active:
                    n += 1
                    if n == 1:
                        first_days.append((e["effective_date"] - c["start_date"]).days)
                active = e["to_dose_mg_bid"]
            if e["reason"] == "toxicity" and e["to_state"] in _TOXICITY_KIND:
                reasons[(e["toxicity"] or "not recorded", _TOXICITY_KIND[e["to_state"]])] += 1
        per_course[min(n, 2)] += 1
    return per_course, first_days, reasons


def overview(*, user: User, today: date, clinic_id: int | None = None, months: int = 12) -> dict:
    courses = TreatmentCourse.objects.for_user(user).exclude(dose_state="not_started").filter(patient__archived_at__isnull=True)
    if clinic_id:
        courses = courses.filter(patient__clinic_id=clinic_id)
    course_rows = list(courses.values("pk", "patient_id", "patient__clinic_id", "start_date", "end_date", "dose_state",
                                      "dose_mg_bid", "drug"))
    events = defaultdict(list)
    for e in DoseChangeEvent.objects.filter(course__in=courses.values("pk")).order_by("effective_date", "pk").values(
            "course_id", "effective_date", "from_state", "from_dose_mg_bid", "to_state", "to_dose_mg_bid", "reason", "toxicity"):
        events[e["course_id"]].append(e)

    now_counts = Counter(level_of(c["dose_state"], c["dose_mg_bid"]) for c in course_rows)
    now = [{"level": LEVELS[k], "count": now_counts.get(k, 0)} for k in LEVELS]

    over_time = _levels_over_time(courses, _month_ends(today, months))
    reductions_per_course, first_reduction_days, reasons = _reductions(course_rows, events)
    on_treatment_days = [((c["end_date"] or today) - c["start_date"]).days for c in course_rows]

    return {
        "n_courses": len(course_rows),
        "now": now,
        "over_time": over_time,
        "levels": [LEVELS[k] for k in LEVELS],
        "level_keys": list(LEVELS),
        "reductions": [{"label": "none", "count": reductions_per_course.get(0, 0)},
                       {"label": "one", "count": reductions_per_course.get(1, 0)},
                       {"label": "two", "count": reductions_per_course.get(2, 0)}],
        "first_reduction_median_days": statistics.median(first_reduction_days) if first_reduction_days else None,
        "first_reduction_n": len(first_reduction_days),
        "reasons": [{"toxicity": t, "kind": k, "count": n} for (t, k), n in reasons.most_common()],
        "on_treatment_median_days": statistics.median(on_treatment_days) if on_treatment_days else None,
        "on_time": on_time_share(course_rows=course_rows, today=today),
        "program": program_summary(courses=courses, today=today),
    }


PDC_BANDS = (("under 50 %", None, Decimal("0.5")), ("50–79 %", Decimal("0.5"), Decimal("0.8")),
             ("80–89 %", Decimal("0.8"), Decimal("0.9")), ("90 % or more", Decimal("0.9"), None))


def program_summary(*, courses, today: date, window_days: int = 90) -> dict:
    """The oral therapy program across the cohort (issue #16), counted by the database:
    patients by proportion of days covered (from dispensings), and the check-ins of the
    last `window_days` days done by their due date (+ the clinic's grace)."""
    active = courses.filter(end_date__isnull=True)
    bands = {f"b{i}": Count("pk", filter=(Q(pdc__gte=lo) if lo is not None else Q())
                            & (Q(pdc__lt=hi) if hi is not None else Q()) & Q(pdc__isnull=False))
             for i, (_, lo, hi) in enumerate(PDC_BANDS)}
    got = ProgramStatus.objects.filter(course__in=active.values("pk")).aggregate(**bands)
    since = today - timedelta(days=window_days)
    checks = CheckIn.objects.filter(course__in=courses.values("pk"), done_on__gte=since,
                                    due_on__isnull=False).aggregate(n=Count("pk"), on_time=Count("pk", filter=Q(on_time=True)))
    # Check-ins that fell due in the window and are still not done count as not on time.
    missed = MonitoringItem.objects.filter(course__in=active.values("pk"), requirement__code=rules.CHECK_IN,
                                           due_date__gte=since, overdue_from__lte=today).count()
    checks["n"] += missed
    with_pdc = sum(got[f"b{i}"] for i in range(len(PDC_BANDS)))
    return {
        "pdc_bands": [{"label": label, "count": got[f"b{i}"]} for i, (label, _, _) in enumerate(PDC_BANDS)],
        "with_pdc": with_pdc,
        "check_ins_due": checks["n"], "check_ins_on_time": checks["on_time"], "check_ins_missed": missed,
        "check_ins_share": round(100 * checks["on_time"] / checks["n"]) if checks["n"] else None,
        "window_days": window_days,
    }


def _schedule_today(req: Requirement, today: date) -> rules.Schedule:
    version = req.version_on(today)
    return version.parsed if version else rules.Schedule()


def on_time_share(*, course_rows: list[dict], today: date, window_days: int = 90) -> dict:
    """Of the monitoring tests that fell due in the last `window_days` days (label and
    clinic schedules), how many were done by their due date (+ the clinic's grace)."""
    window_start = today - timedelta(days=window_days)
    clinic_ids = {c["patient__clinic_id"] for c in course_rows}
    reqs = {cid: [r for r in Requirement.objects.for_clinic(cid) if r.analytes] for cid in clinic_ids}
    grace = {cid: ClinicSettings.for_clinic(cid).grace_days for cid in clinic_ids}
    # Each requirement's schedule in force today, read once (not once per course).
    schedules = {cid: [(r, s) for r in rs if (s := _schedule_today(r, today)).phases] for cid, rs in reqs.items()}
    # Tests from two months before the window: the anchor of the first due date in it.
    # A result counts on its clinic's day (accounts.clinic_time), as on the worklist.
    since_day = window_start - timedelta(days=62)
    zones = dict(Clinic.objects.filter(pk__in=clinic_ids).values_list("pk", "timezone"))
    satisfied: dict[tuple[int, int], list[date]] = defaultdict(list)
    for cid in clinic_ids:
        for req, _ in schedules[cid]:
            # The days on which every analyte of the requirement was resulted (a full panel
            # counts, rules.satisfied_days), found by the database: the clinic's calendar day
            # of each result, grouped per patient and day (issue #14).
            wanted = sorted(set(req.analytes))
            days = (LabResult.objects.filter(patient__clinic_id=cid, is_baseline=False, analyte__in=wanted,
                                             collected_at__gte=clinic_day_start(zones[cid], since_day))
                    .annotate(day=TruncDate("collected_at", tzinfo=clinic_zone(zones[cid])))
                    .values("patient_id", "day").annotate(n=Count("analyte", distinct=True)).filter(n=len(wanted))
                    .order_by("patient_id", "day").values_list("patient_id", "day"))
            for pid, day in days:
                satisfied[(req.pk, pid)].append(day)
    due = done = 0
    by_requirement: Counter = Counter()
    by_requirement_done: Counter = Counter()
    for c in course_rows:
        if c["dose_state"] in ("discontinued", "not_started"):
            continue
        cid = c["patient__clinic_id"]
        for req, schedule in schedules[cid]:
            tests = [d for d in satisfied.get((req.pk, c["patient_id"]), ()) if d >= c["start_date"]]
            anchor = max([t for t in tests if t < window_start] or [None], key=lambda x: x or date.min)
            later = [t for t in tests if t >= window_start]
            while True:
                when = rules.next_due(schedule, c["start_date"], anchor)
                if when is None or when >= today:
                    break
                following = next((t for t in later if anchor is None or t > anchor), None)
                if when >= window_start:
                    due += 1
                    by_requirement[req.label] += 1
                    if following is not None and following <= when + timedelta(days=grace[cid]):
                        done += 1
                        by_requirement_done[req.label] += 1
                if following is None:
                    break
                anchor = following
    return {
        "due": due, "on_time": done, "share": round(100 * done / due) if due else None, "window_days": window_days,
        "by_requirement": [{"label": k, "due": v, "on_time": by_requirement_done.get(k, 0)} for k, v in by_requirement.items()],
    }
