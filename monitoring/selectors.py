"""Reads for the nurse's worklist.

Each section is one queryset, filtered in the database (clinic, test, nurse, MRN), counted
exactly with COUNT(*) and read a page at a time (LIMIT/OFFSET on an indexed order), so the
cost of a page follows what the nurse looks at, not the size of the clinic (issue #14).
Every clinic's rows are read on its own today (accounts.clinic_time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.clinic_time import clinic_day_start, clinic_today, on_clinic_days, user_clinics
from accounts.models import Clinic, User
from monitoring import program, rules
from monitoring.models import ClinicSettings, MonitoringItem, Requirement
from patients.models import (
    DesensitizationPlan,
    LabResult,
    Patient,
    PlanDay,
    ProgramStatus,
    Recommendation,
    TreatmentCourse,
)
from protocols.dosing import DoseState


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


@dataclass(frozen=True)
class ClinicDay:
    """One clinic's calendar at the instant the worklist is read: its own today and its
    own 'due soon' setting (ClinicSettings), so the worklist and the clinic's digest and
    patient pages agree (accounts.clinic_time)."""

    clinic: Clinic
    today: date
    due_soon_days: int
    grace_days: int = rules.DEFAULT_GRACE_DAYS
    fill_check_days: int = 7


def clinic_days(*, user: User, now: datetime | None = None, clinic_id: int | None = None) -> dict[int, ClinicDay]:
    """The user's clinics (or the one filtered on), each with its today at `now` (one
    query, for the settings; memberships are cached per request)."""
    now = now or timezone.now()
    clinics = [c for c in user_clinics(user) if not clinic_id or c.pk == clinic_id]
    cfg = {cid: (soon, grace, fill) for cid, soon, grace, fill in
           ClinicSettings.objects.filter(clinic__in=clinics).values_list("clinic_id", "due_soon_days", "grace_days",
                                                                         "fill_check_days")}
    default = (rules.DEFAULT_DUE_SOON_DAYS, rules.DEFAULT_GRACE_DAYS, ClinicSettings.fill_check_days.field.default)
    return {c.pk: ClinicDay(c, clinic_today(c, now), *cfg.get(c.pk, default)) for c in clinics}


def worklist_today(days: dict[int, ClinicDay]) -> date:
    """The date in the worklist's heading: the clinics' today, or, for clinics that are
    on different dates right now, the server's."""
    dates = {d.today for d in days.values()}
    return dates.pop() if len(dates) == 1 else timezone.localdate()


PAGE_SIZE = 50
HIGH_GRADE_DAYS = 14
SECTIONS = ("overdue", "due_soon", "recommendations", "withheld", "high_grades", "plans", "supply", "education")


@dataclass(frozen=True)
class Filters:
    """The worklist's filters. `requirement` is a test's code; `mrn` matches MRNs that start
    with it, ignoring case (it is posted, never in a URL)."""

    clinic_id: int | None = None
    requirement: str | None = None
    nurse_id: int | None = None
    mrn: str = ""
    overdue_order: str = "most"  # or "least": by days overdue

    def patients(self, path: str) -> Q:
        """The nurse and MRN filters on the patient reached by `path` ("course__patient")."""
        q = Q()
        if self.nurse_id:
            q &= Q(**{f"{path}__primary_nurse_id": self.nurse_id})
        if self.mrn:
            q &= Q(**{f"{path}__mrn__istartswith": self.mrn})
        return q

    def clinic(self, field: str) -> Q:
        return Q(**{field: self.clinic_id}) if self.clinic_id else Q()


@dataclass(frozen=True)
class Section:
    """One section: its exact count and the rows of the page shown."""

    name: str
    page: Page
    rows: list

    @property
    def count(self) -> int:
        return self.page.paginator.count

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter(self.rows)


def _analytes(user: User, requirement: str | None) -> set[str] | None:
    """The analytes of a test (its own copy in the user's clinics or the shared default)."""
    if not requirement:
        return None
    reqs = Requirement.objects.filter(Q(clinic__isnull=True) | Q(clinic__in=user.clinic_ids()), code=requirement)
    return {a for r in reqs.values_list("analytes", flat=True) for a in r}


# What an item's row shows (and the CSV export writes): the page reads these columns
# only, not every column of the item, its course, patient, clinic and requirement.
ITEM_ROW_FIELDS = ("id", "clinic_id", "course_id", "requirement_id", "due_date", "overdue_from", "snoozed_until",
                   "course__id", "course__patient__id", "course__patient__clinic_id", "course__patient__mrn",
                   "course__patient__first_name", "course__patient__last_name", "requirement__id",
                   "requirement__label", "clinic__id", "clinic__name")


def _program_rows() -> tuple:
    """What a supply or education row shows of its course and patient (and the CSV export
    writes): read by key after the page, those columns only."""
    return (Prefetch("course", queryset=TreatmentCourse.objects.only("id", "patient_id", "start_date", "dose_mg_bid")),
            Prefetch("course__patient", queryset=Patient.objects.only("id", "clinic_id", "mrn", "first_name", "last_name")),
            "course__patient__clinic")


def worklist_querysets(*, user: User, days: dict[int, ClinicDay], filters: Filters) -> dict[str, QuerySet]:
    """Each section's rows, filtered and ordered in the database (nothing read yet)."""
    todays = {cid: d.today for cid, d in days.items()}
    items = MonitoringItem.objects.for_user(user).filter(filters.clinic("clinic_id"), filters.patients("course__patient"))
    if filters.requirement:
        items = items.filter(requirement__code=filters.requirement)
    # Days overdue are counted from the due date (a lapsed snooze does not make an item
    # less overdue); the (clinic, due_date) index gives this order.
    overdue = items.overdue_on(todays).with_patient().only(*ITEM_ROW_FIELDS).order_by(
        *(("due_date", "pk") if filters.overdue_order != "least" else ("-due_date", "-pk")))
    due_soon = items.due_soon_on(todays, {cid: d.due_soon_days for cid, d in days.items()},
                                 {cid: d.grace_days for cid, d in days.items()}).with_patient().only(*ITEM_ROW_FIELDS) \
        .order_by("overdue_from", "pk")  # in the order they would become overdue
    analytes = _analytes(user, filters.requirement)
    recs = Recommendation.objects.for_user(user).pending().filter(
        filters.clinic("course__patient__clinic_id"), filters.patients("course__patient"))
    if analytes is not None:
        recs = recs.filter(triggering_lab__analyte__in=analytes)
    since = on_clinic_days(
        todays, lambda cid, today: Q(collected_at__gte=clinic_day_start(days[cid].clinic, today - timedelta(days=HIGH_GRADE_DAYS))),
        clinic_field="patient__clinic_id")
    grades = LabResult.objects.for_user(user).filter(since, filters.patients("patient"), grade__gte=3,
                                                     patient__archived_at__isnull=True)
    if analytes is not None:
        grades = grades.filter(analyte__in=analytes)
    return {
        "overdue": overdue,
        "due_soon": due_soon,
        "recommendations": recs.select_related("course__patient__clinic", "triggering_lab", "triggering_event")
        .order_by("created_at", "pk"),
        "withheld": TreatmentCourse.objects.for_user(user).on_treatment().filter(
            filters.clinic("patient__clinic_id"), filters.patients("patient"), dose_state=DoseState.WITHHELD)
        .select_related("patient__clinic").order_by("patient__last_name", "pk"),
        "high_grades": grades.select_related("patient__clinic").order_by("-collected_at", "-pk"),
        "plans": DesensitizationPlan.objects.for_user(user).running().filter(
            filters.clinic("course__patient__clinic_id"), filters.patients("course__patient"))
        .select_related("course__patient__clinic", "protocol").prefetch_related("protocol__steps")
        .order_by("course__patient__last_name", "pk"),
        # The oral therapy program (issue #16): supply running out or a prescription not
        # filled, and courses started without recorded education (or taught another dose).
        "supply": program.supply_flags(
            ProgramStatus.objects.for_user(user).filter(filters.clinic("clinic_id"), filters.patients("course__patient")),
            todays, {cid: d.fill_check_days for cid, d in days.items()})
        # The page's rows first (a sort of the stored rows alone), then their courses and
        # patients by key: a join before the LIMIT would read every course (issue #14).
        .prefetch_related(*_program_rows()).order_by("runs_out_on", "unfilled_since", "pk"),
        "education": program.education_missing(ProgramStatus.objects.for_user(user).filter(
            filters.clinic("clinic_id"), filters.patients("course__patient")))
        .prefetch_related(*_program_rows()).order_by("clinic_id", "id"),
    }


def worklist(*, user: User, days: dict[int, ClinicDay], filters: Filters,
             pages: dict[str, str | int | None] | None = None) -> dict[str, Section]:
    """Every section: its exact count and one page of rows (`pages`: the page number asked
    for each section). Two queries per section, whatever the size of the clinic."""
    pages = pages or {}
    out = {}
    for name, qs in worklist_querysets(user=user, days=days, filters=filters).items():
        page = Paginator(qs, PAGE_SIZE).get_page(pages.get(name))
        out[name] = Section(name, page, ROWS[name](list(page.object_list), days))
    return out


def item_rows(items: list[MonitoringItem], days: dict[int, ClinicDay]) -> list[ItemRow]:
    return [ItemRow.of(i, days[i.clinic_id].today, days[i.clinic_id].due_soon_days) for i in items]


def hold_rows(courses: list[TreatmentCourse], days: dict[int, ClinicDay]) -> list[HoldRow]:
    """Courses on hold, each with the newest value of every analyte in its recovery
    condition (one query for the values of the page's courses)."""
    analytes = {c.get("analyte") for course in courses for c in course.recovery_condition if c.get("analyte")}
    latest: dict[tuple[int, str], LabResult] = {}
    if courses and analytes:
        labs = LabResult.objects.filter(patient__in=[c.patient_id for c in courses], analyte__in=analytes)
        for lab in labs.order_by("-collected_at").only("patient_id", "analyte", "value", "comparator", "unit", "x_uln", "grade",
                                                     "collected_at"):
            latest.setdefault((lab.patient_id, lab.analyte), lab)
    return [HoldRow(course, [{"criterion": c, "latest": latest.get((course.patient_id, c.get("analyte")))}
                             for c in course.recovery_condition]) for course in courses]


def plan_rows(plans: list[DesensitizationPlan], days: dict[int, ClinicDay]) -> list[PlanRow]:
    """Each plan with its day on its clinic's today (or the next unrecorded one) and
    whether a day was missed (one query for the page's plans' days)."""
    by_plan: dict[int, list[PlanDay]] = {}
    for d in PlanDay.objects.filter(plan__in=plans, cancelled=False).order_by("date", "number"):
        by_plan.setdefault(d.plan_id, []).append(d)
    rows = []
    for p in plans:
        clinic_id = p.course.patient.clinic_id
        local = days[clinic_id].today if clinic_id in days else clinic_today(p.course.patient.clinic)
        mine = by_plan.get(p.pk, [])
        day = next((d for d in mine if d.date == local), None) or next((d for d in mine if not d.recorded), None)
        rows.append(PlanRow(p, day, any(d.date < local and not d.recorded for d in mine), local))
    return rows


def _as_is(rows: list, days: dict[int, ClinicDay]) -> list:
    return rows


def supply_rows(statuses: list[ProgramStatus], days: dict[int, ClinicDay]) -> list[SupplyRow]:
    rows = []
    for s in statuses:
        day = days.get(s.clinic_id)
        today = day.today if day else clinic_today(s.course.patient.clinic)
        fill = day.fill_check_days if day else ClinicSettings.for_clinic(s.clinic_id).fill_check_days
        waited = (today - s.unfilled_since).days if s.unfilled_since else None
        rows.append(SupplyRow(s, s.runs_out_soon(today), s.ran_out(today),
                              waited if waited is not None and waited >= fill else None))
    return rows


@dataclass(frozen=True)
class SupplyRow:
    status: ProgramStatus
    runs_out_soon: bool
    ran_out: bool  # already out: nothing dispensed since the day a dose could not be made
    unfilled_days: int | None  # days since the prescription, when past the clinic's fill-check days


ROWS = {"overdue": item_rows, "due_soon": item_rows, "recommendations": _as_is, "withheld": hold_rows,
        "high_grades": _as_is, "plans": plan_rows, "supply": supply_rows, "education": _as_is}


def worklist_all(*, user: User, days: dict[int, ClinicDay], filters: Filters, chunk: int = 500):
    """(section, row) for every row of every section, read in chunks of `chunk` from the
    database (for the CSV export: memory stays flat at any clinic size)."""
    for name, qs in worklist_querysets(user=user, days=days, filters=filters).items():
        batch: list = []
        for obj in qs.iterator(chunk_size=chunk) if name != "plans" else qs:
            batch.append(obj)
            if len(batch) == chunk:
                yield from ((name, row) for row in ROWS[name](batch, days))
                batch = []
        yield from ((name, row) for row in ROWS[name](batch, days))
