"""Reads for the nurse's worklist. Each section is a fixed number of queries."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from patients.models import LabResult, Recommendation, TreatmentCourse
from protocols.dosing import DoseState


def pending_recommendations(*, user: User, clinic_id: int | None = None) -> QuerySet[Recommendation]:
    qs = Recommendation.objects.for_user(user).pending().select_related("course__patient__clinic", "triggering_lab",
                                                                          "triggering_event")
    if clinic_id:
        qs = qs.filter(course__patient__clinic_id=clinic_id)
    return qs.order_by("created_at")


def withheld_courses(*, user: User, clinic_id: int | None = None) -> list[TreatmentCourse]:
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
    for course in courses:
        course.recovery_rows = [
            {"criterion": c, "latest": latest.get((course.patient_id, c.get("analyte")))} for c in course.recovery_condition
        ]
    return courses


def _items(qs, *, today, clinic_id: int | None, requirement: str | None) -> list:
    if clinic_id:
        qs = qs.filter(clinic_id=clinic_id)
    if requirement:
        qs = qs.filter(requirement__code=requirement)
    items = list(qs.with_patient().order_by("due_date", "course__patient__mrn"))
    for item in items:
        item.status, item.days_late = item.status_on(today), item.days_overdue(today)
    return items


def overdue_items(*, user: User, today, clinic_id: int | None = None, requirement: str | None = None):
    """Overdue monitoring, most overdue first: one indexed query on the stored deadline."""
    from monitoring.models import MonitoringItem

    return _items(MonitoringItem.objects.for_user(user).overdue(today), today=today, clinic_id=clinic_id,
                  requirement=requirement)


def due_items(*, user: User, today, days: int = 7, clinic_id: int | None = None, requirement: str | None = None):
    """Due in the next `days` days (today included; also past due within grace or snoozed), not overdue."""
    from datetime import timedelta

    from monitoring.models import MonitoringItem

    qs = MonitoringItem.objects.for_user(user).due_between(today - timedelta(days=60), today + timedelta(days=days))
    return _items(qs.filter(overdue_from__gt=today), today=today, clinic_id=clinic_id, requirement=requirement)


def recent_high_grades(*, user: User, since, clinic_id: int | None = None):
    """Results of CTCAE grade 3 or more collected since `since`, newest first."""
    qs = LabResult.objects.for_user(user).filter(grade__gte=3, collected_at__gte=since, patient__archived_at__isnull=True)
    if clinic_id:
        qs = qs.filter(patient__clinic_id=clinic_id)
    return list(qs.select_related("patient").order_by("-collected_at")[:200])


def worklist(*, user: User, today, clinic_id: int | None = None, requirement: str | None = None,
             nurse_id: int | None = None, mrn: str = "") -> dict:
    """Every section of the worklist, filtered the same way, in a fixed number of queries."""
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    def keep(patient) -> bool:
        if nurse_id and patient.primary_nurse_id != nurse_id:
            return False
        return not (mrn and mrn.lower() not in patient.mrn.lower())

    since = timezone.make_aware(datetime.combine(today - timedelta(days=14), time.min))
    sections = {
        "overdue": [i for i in overdue_items(user=user, today=today, clinic_id=clinic_id, requirement=requirement)
                    if keep(i.course.patient)],
        "due_soon": [i for i in due_items(user=user, today=today, days=7, clinic_id=clinic_id, requirement=requirement)
                     if keep(i.course.patient)],
        "recommendations": [r for r in pending_recommendations(user=user, clinic_id=clinic_id) if keep(r.course.patient)],
        "withheld": [c for c in withheld_courses(user=user, clinic_id=clinic_id) if keep(c.patient)],
        "high_grades": [lab for lab in recent_high_grades(user=user, since=since, clinic_id=clinic_id) if keep(lab.patient)],
    }
    for extra in WORKLIST_EXTRAS:
        sections.update(extra(user=user, today=today, clinic_id=clinic_id, keep=keep))
    return sections


# Other features add worklist sections (desensitization plans): f(user, today, clinic_id, keep) -> dict.
WORKLIST_EXTRAS: list = []


def running_plans(*, user: User, today, clinic_id: int | None = None, keep=lambda p: True) -> dict:
    """Desensitization plans in progress with today's step (worklist section)."""
    from patients.models import DesensitizationPlan, PlanDay

    qs = DesensitizationPlan.objects.for_user(user).running().select_related("patient", "protocol").prefetch_related("protocol__steps")
    if clinic_id:
        qs = qs.filter(patient__clinic_id=clinic_id)
    plans = [p for p in qs.order_by("patient__last_name") if keep(p.patient)]
    days = PlanDay.objects.filter(plan__in=plans, cancelled=False).order_by("date", "number")
    by_plan: dict = {}
    for d in days:
        by_plan.setdefault(d.plan_id, []).append(d)
    for p in plans:
        mine = by_plan.get(p.pk, [])
        p.today = next((d for d in mine if d.date == today), None) or next((d for d in mine if not d.recorded), None)
        p.missed = any(d.date < today and not d.recorded for d in mine)
    return {"plans": plans}


WORKLIST_EXTRAS.append(running_plans)
