"""Reads for the patient screens, each a fixed number of queries whatever the data size."""

from __future__ import annotations

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from accounts.clinic_time import clinic_today, clinic_zone
from accounts.models import User
from patients.desensitization import today_day
from patients.models import (
    DesensitizationPlan,
    DoseChangeEvent,
    LabResult,
    Patient,
    Recommendation,
    RecommendationComment,
    TreatmentCourse,
)
from patients.trail import patient_trail
from patients.trends import trend_series
from protocols.analytes import ANALYTES


def patient_list(*, user: User, clinic_id: int | None = None, include_archived: bool = False) -> QuerySet[Patient]:
    """Patients of the user's clinics, with the open course's dose and the latest ALT
    annotated (one query)."""
    qs = Patient.objects.for_user(user).select_related("clinic")
    if not include_archived:
        qs = qs.active()
    if clinic_id:
        qs = qs.for_clinic(clinic_id)
    course = TreatmentCourse.objects.filter(patient=OuterRef("pk")).order_by("end_date", "-start_date")
    alt = LabResult.objects.filter(patient=OuterRef("pk"), analyte="alt").order_by("-collected_at")
    return qs.annotate(
        course_state=Subquery(course.values("dose_state")[:1]),
        course_dose=Subquery(course.values("dose_mg_bid")[:1]),
        course_resume=Subquery(course.values("resume_dose_mg_bid")[:1]),
        alt_value=Subquery(alt.values("value")[:1]),
        alt_comparator=Subquery(alt.values("comparator")[:1]),
        alt_x_uln=Subquery(alt.values("x_uln")[:1]),
        alt_grade=Subquery(alt.values("grade")[:1]),
        alt_at=Subquery(alt.values("collected_at")[:1]),
    )


def patient_page(patient: Patient) -> dict:
    """Everything the patient page shows, in a constant number of queries."""
    events = DoseChangeEvent.objects.select_related(
        "ordered_by", "recorded_by", "triggering_lab", "triggering_event", "recommendation__decided_by"
    ).order_by("effective_date", "pk")
    recs = Recommendation.objects.select_related("decided_by", "triggering_lab", "triggering_event").prefetch_related(
        Prefetch("comments", queryset=RecommendationComment.objects.select_related("author"))
    )
    courses = list(
        TreatmentCourse.objects.filter(patient=patient).prefetch_related(
            Prefetch("dose_events", queryset=events), "medications", Prefetch("recommendations", queryset=recs)
        )
    )
    zone, today = clinic_zone(patient.clinic), clinic_today(patient.clinic)  # the clinic's clock, not the server's
    pending, timeline = [], {}
    for course in courses:
        items = [{"kind": "dose", "date": e.effective_date, "at": e.recorded_at, "event": e} for e in course.dose_events.all()]
        for rec in course.recommendations.all():
            if rec.status == Recommendation.Status.PENDING:
                pending.append(rec)
            elif rec.status == Recommendation.Status.OVERRIDDEN:
                items.append({"kind": "override", "date": timezone.localtime(rec.decided_at, zone).date(), "at": rec.decided_at, "rec": rec})
        timeline[course.pk] = sorted(items, key=lambda i: (i["date"], i["at"]))
        course.timeline = timeline[course.pk]
    labs = list(LabResult.objects.filter(patient=patient).select_related("entered_by").order_by("-collected_at", "analyte"))
    clinical_events = list(patient.events.select_related("recorded_by"))
    panels = lab_panels(labs)

    events_all = sorted((e for c in courses for e in c.dose_events.all()), key=lambda e: (e.effective_date, e.pk))
    charts = trend_series(labs, events_all, today=today, zone=zone)
    open_course = next((c for c in courses if c.end_date is None), courses[0] if courses else None)

    plans = list(DesensitizationPlan.objects.filter(course__patient=patient).select_related("protocol").order_by("-approved_at"))
    running = next((p for p in plans if p.status in ("active", "paused")), None)
    if running is not None:
        running.today = today_day(running, today=today)
    # Reference §9.3: SJS, TEN or DRESS on record means never re-challenge (derived from
    # the events, so it cannot drift from them).
    scar = next((e for e in clinical_events if e.kind == "rash" and e.is_scar), None)
    return {
        "never_rechallenge": scar,
        "plans": plans,
        "running_plan": running,
        "courses": courses,
        "pending_recommendations": pending,
        "course": open_course,
        "labs": labs,
        "retired_labs": list(LabResult.every.filter(patient=patient).exclude(status=LabResult.Status.FINAL)
                             .select_related("retired_by").order_by("-retired_at")),
        "lab_columns": panels["columns"],
        "charts": charts,
        "chart_data": [{k: v for k, v in c.items() if k != "table"} for c in charts],
        "lab_rows": panels["rows"],
        "clinical_events": clinical_events,
    }


def patient_history(patient: Patient, limit: int = 200, *, reads: bool = True) -> list[dict]:
    """The audit trail of the patient and everything hanging off them, newest first, in
    words (patients.trail)."""
    return patient_trail(patient, limit=limit, reads=reads)


def correction_chain(lab: LabResult) -> list[LabResult]:
    """The result and every version of it, oldest first: what it corrected and what
    corrected it (issue #12: the original always stays visible)."""
    chain = [lab]
    while chain[0].amends_id:
        chain.insert(0, LabResult.every.select_related("entered_by", "retired_by").get(pk=chain[0].amends_id))
    while True:
        nxt = LabResult.every.select_related("entered_by", "retired_by").filter(amends_id=chain[-1].pk).first()
        if nxt is None:
            return chain
        chain.append(nxt)


def lab_panels(labs: list[LabResult]) -> dict:
    """Pivot results into one row per collection time and one column per analyte, in the
    fixed analyte order, keeping only columns that have a value."""
    present = {lab.analyte for lab in labs}
    columns = [a for a in ANALYTES.values() if a.code in present]
    rows: dict = {}
    for lab in labs:
        row = rows.setdefault(lab.collected_at, {"collected_at": lab.collected_at, "baseline": lab.is_baseline, "cells": {}})
        row["cells"][lab.analyte] = lab
    ordered = sorted(rows.values(), key=lambda r: r["collected_at"], reverse=True)
    for row in ordered:
        row["cells"] = [row["cells"].get(a.code) for a in columns]
    return {"columns": columns, "rows": ordered}
