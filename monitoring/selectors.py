"""Reads for the nurse's worklist. Each section is a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.clinic_time import clinic_day_start, clinic_today, on_clinic_days, user_clinics
from accounts.models import Clinic, User
from monitoring import rules
from monitoring.models import ClinicSettings, MonitoringItem
from patients.models import DesensitizationPlan, LabResult, PlanDay, Recommendation, TreatmentCourse
from protocols.dosing import DoseState


def pending_recommendations(*, user: User, clinic_id: int | None = None) -> QuerySet[Recommendation]:
    qs = Recommendation.objects.for_user(user).pending().select_related("course__patient__clinic", "triggering_lab",
                                                                          "triggering_event")
    if clinic_id:
        qs = qs.filter(course__patient__clinic_id=clinic_id)
    return qs.order_by("created_at")


@dataclass(frozen=True)
class ItemRow:
    """A monitoring item as a page shows it on its clinic's today (one status rule:
    monitoring.rules.status)."""

    item: MonitoringItem
    today: date
    status: str
    days_late: int

    @classmethod
    def of(cls, item: MonitoringItem, today: date, due_soon_days: int) -> ItemRow:
        return cls(item, today, item.status_on(today, due_soon_days), item.days_overdue(today))


@dataclass(frozen=True)
class HoldRow:
    """A course on hold with the newest value of each analyte of its recovery condition."""

    course: TreatmentCourse
    recovery: list[dict]


@dataclass(frozen=True)
class PlanRow:
    """A desensitization plan in progress with its day on the clinic's today (or the next
    unrecorded one) and whether a day was missed."""

    plan: DesensitizationPlan
    day: PlanDay | None
    missed: bool
    today: date  # the plan's clinic's

    @property
    def not_started(self) -> bool:
        return self.day is not None and self.day.date > self.today


def patient_item_rows(patient) -> list[ItemRow]:
    """The patient page's monitoring section: every item on the clinic's today."""
    today = clinic_today(patient.clinic)
    soon = ClinicSettings.for_clinic(patient.clinic_id).due_soon_days
    items = MonitoringItem.objects.filter(course__patient=patient).select_related("requirement") \
        .order_by("due_date", "requirement__code")
    return [ItemRow.of(item, today, soon) for item in items]


def withheld_courses(*, user: User, clinic_id: int | None = None) -> list[HoldRow]:
    """Courses on hold, each with the newest value of every analyte in its recovery
    condition (one query for the courses, one for the values)."""
    qs = TreatmentCourse.objects.for_user(user).on_treatment().filter(dose_state=DoseState.WITHHELD)
    if clinic_id:
        qs = qs.filter(patient__clinic_id=clinic_id)
    courses = list(qs.select_related("patient__clinic").order_by("patient__last_name"))
    analytes = {c.get("analyte") for course in courses for c in course.recovery_condition if c.get("analyte")}
    latest: dict[tuple[int, str], LabResult] = {}
    if courses and analytes:
        labs = LabResult.objects.filter(patient__in=[c.patient_id for c in courses], analyte__in=analytes)
        for lab in labs.order_by("-collected_at").only("patient_id", "analyte", "value", "unit", "x_uln", "grade", "collected_at"):
            latest.setdefault((lab.patient_id, lab.analyte), lab)
    return [HoldRow(course, [{"criterion": c, "latest": latest.get((course.patient_id, c.get("analyte")))}
                             for c in course.recovery_condition]) for course in courses]


@dataclass(frozen=True)
class ClinicDay:
    """One clinic's calendar at the instant the worklist is read: its own today and its
    own 'due soon' setting (ClinicSettings), so the worklist and the clinic's digest and
    patient pages agree (accounts.clinic_time)."""

    clinic: Clinic
    today: date
    due_soon_days: int


def clinic_days(*, user: User, now: datetime | None = None, clinic_id: int | None = None) -> dict[int, ClinicDay]:
    """The user's clinics (or the one filtered on), each with its today at `now` (one
    query, for the settings; memberships are cached per request)."""
    now = now or timezone.now()
    clinics = [c for c in user_clinics(user) if not clinic_id or c.pk == clinic_id]
    soon = dict(ClinicSettings.objects.filter(clinic__in=clinics).values_list("clinic_id", "due_soon_days"))
    return {c.pk: ClinicDay(c, clinic_today(c, now), soon.get(c.pk, rules.DEFAULT_DUE_SOON_DAYS)) for c in clinics}


def _items(qs, *, days: dict[int, ClinicDay], requirement: str | None) -> list:
    if requirement:
        qs = qs.filter(requirement__code=requirement)
    items = qs.with_patient().order_by("due_date", "course__patient__mrn")
    return [ItemRow.of(item, days[item.clinic_id].today, days[item.clinic_id].due_soon_days) for item in items]


def overdue_items(*, user: User, days: dict[int, ClinicDay], requirement: str | None = None):
    """Overdue monitoring, most overdue first: one indexed query on the stored deadline,
    each clinic on its own today."""
    qs = MonitoringItem.objects.for_user(user).overdue_on({cid: d.today for cid, d in days.items()})
    return _items(qs, days=days, requirement=requirement)


def due_items(*, user: User, days: dict[int, ClinicDay], requirement: str | None = None):
    """Due within each clinic's 'due soon' days (today included; also past due within
    grace or snoozed), not overdue."""
    qs = MonitoringItem.objects.for_user(user).due_soon_on({cid: d.today for cid, d in days.items()},
                                                          {cid: d.due_soon_days for cid, d in days.items()})
    return _items(qs, days=days, requirement=requirement)


HIGH_GRADE_DAYS = 14
HIGH_GRADE_LIMIT = 200


def recent_high_grades(*, user: User, days: dict[int, ClinicDay], nurse_id: int | None = None, mrn: str = ""):
    """Results of CTCAE grade 3 or more collected since the start of the day 14 days ago
    in each clinic, newest first. The nurse and MRN filters are applied in the query,
    before the limit, so a matching result is never cut off by others."""
    since = on_clinic_days(
        {cid: d.today for cid, d in days.items()},
        lambda cid, today: Q(collected_at__gte=clinic_day_start(days[cid].clinic, today - timedelta(days=HIGH_GRADE_DAYS))),
        clinic_field="patient__clinic_id")
    qs = LabResult.objects.for_user(user).filter(since, grade__gte=3, patient__archived_at__isnull=True)
    if nurse_id:
        qs = qs.filter(patient__primary_nurse_id=nurse_id)
    if mrn:
        qs = qs.filter(patient__mrn__icontains=mrn)
    return list(qs.select_related("patient__clinic").order_by("-collected_at")[:HIGH_GRADE_LIMIT])


def worklist(*, user: User, now: datetime | None = None, days: dict[int, ClinicDay] | None = None,
             clinic_id: int | None = None, requirement: str | None = None, nurse_id: int | None = None,
             mrn: str = "") -> dict:
    """Every section of the worklist, filtered the same way, in a fixed number of queries.
    Each clinic's rows are read on its own today (a user may belong to clinics in several
    time zones)."""
    days = clinic_days(user=user, now=now, clinic_id=clinic_id) if days is None else days

    def keep(patient) -> bool:
        if nurse_id and patient.primary_nurse_id != nurse_id:
            return False
        return not (mrn and mrn.lower() not in patient.mrn.lower())

    sections = {
        "overdue": [r for r in overdue_items(user=user, days=days, requirement=requirement) if keep(r.item.course.patient)],
        "due_soon": [r for r in due_items(user=user, days=days, requirement=requirement) if keep(r.item.course.patient)],
        "recommendations": [r for r in pending_recommendations(user=user, clinic_id=clinic_id) if keep(r.course.patient)],
        "withheld": [r for r in withheld_courses(user=user, clinic_id=clinic_id) if keep(r.course.patient)],
        "high_grades": recent_high_grades(user=user, days=days, nurse_id=nurse_id, mrn=mrn),
    }
    todays = {cid: d.today for cid, d in days.items()}
    sections["plans"] = running_plans(user=user, today=worklist_today(days), todays=todays, clinic_id=clinic_id, keep=keep)
    return sections


def worklist_today(days: dict[int, ClinicDay]) -> date:
    """The date in the worklist's heading: the clinics' today, or, for clinics that are
    on different dates right now, the server's."""
    dates = {d.today for d in days.values()}
    return dates.pop() if len(dates) == 1 else timezone.localdate()


def running_plans(*, user: User, today, todays: dict[int, date] | None = None, clinic_id: int | None = None,
                  keep=lambda p: True) -> list[PlanRow]:
    """Desensitization plans in progress with today's step (worklist section); "today"
    and "missed" on the plan's clinic's date."""
    qs = DesensitizationPlan.objects.for_user(user).running().select_related("course__patient__clinic", "protocol") \
        .prefetch_related("protocol__steps")
    if clinic_id:
        qs = qs.filter(course__patient__clinic_id=clinic_id)
    plans = [p for p in qs.order_by("course__patient__last_name") if keep(p.patient)]
    days = PlanDay.objects.filter(plan__in=plans, cancelled=False).order_by("date", "number")
    by_plan: dict = {}
    for d in days:
        by_plan.setdefault(d.plan_id, []).append(d)
    rows = []
    for p in plans:
        local = (todays or {}).get(p.patient.clinic_id, today)
        mine = by_plan.get(p.pk, [])
        day = next((d for d in mine if d.date == local), None) or next((d for d in mine if not d.recorded), None)
        rows.append(PlanRow(p, day, any(d.date < local and not d.recorded for d in mine), local))
    return rows
