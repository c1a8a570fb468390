"""Reads for the patient screens, each a fixed number of queries whatever the data size."""

from __future__ import annotations

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from accounts.models import User
from patients.models import DoseChangeEvent, LabResult, Patient, Recommendation, RecommendationComment, TreatmentCourse


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
    pending, timeline = [], {}
    for course in courses:
        items = [{"kind": "dose", "date": e.effective_date, "at": e.recorded_at, "event": e} for e in course.dose_events.all()]
        for rec in course.recommendations.all():
            if rec.status == Recommendation.Status.PENDING:
                pending.append(rec)
            elif rec.status == Recommendation.Status.OVERRIDDEN:
                items.append({"kind": "override", "date": timezone.localtime(rec.decided_at).date(), "at": rec.decided_at, "rec": rec})
        timeline[course.pk] = sorted(items, key=lambda i: (i["date"], i["at"]))
        course.timeline = timeline[course.pk]
    labs = list(LabResult.objects.filter(patient=patient).select_related("entered_by").order_by("-collected_at", "analyte"))
    clinical_events = list(patient.events.select_related("recorded_by"))
    panels = lab_panels(labs)
    from patients.trends import trend_series

    events_all = sorted((e for c in courses for e in c.dose_events.all()), key=lambda e: (e.effective_date, e.pk))
    charts = trend_series(labs, events_all)
    open_course = next((c for c in courses if c.end_date is None), courses[0] if courses else None)
    from patients.models import DesensitizationPlan

    plans = list(DesensitizationPlan.objects.filter(patient=patient).select_related("protocol").order_by("-approved_at"))
    running = next((p for p in plans if p.status in ("active", "paused")), None)
    if running is not None:
        from patients.desensitization import today_day

        running.today = today_day(running)
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
        "lab_columns": panels["columns"],
        "charts": charts,
        "chart_data": [{k: v for k, v in c.items() if k != "table"} for c in charts],
        "lab_rows": panels["rows"],
        "clinical_events": clinical_events,
    }


def patient_history(patient: Patient, limit: int = 200) -> list[dict]:
    """The audit trail of the patient and everything hanging off them, newest first."""
    sources = [
        ("Patient", Patient.history.filter(id=patient.pk)),
        ("Course", TreatmentCourse.history.filter(patient_id=patient.pk)),
        ("Dose change", DoseChangeEvent.history.filter(course__patient_id=patient.pk)),
        ("Lab result", LabResult.history.filter(patient_id=patient.pk)),
        ("Clinical event", patient.events.model.history.filter(patient_id=patient.pk)),
    ]
    rows: list[dict] = []
    for label, qs in sources:
        records = list(qs.select_related("history_user").order_by("-history_date")[:limit])
        # Versions of each object side by side, so the diffs cost no query per row.
        by_id: dict[int, list] = {}
        for rec in records:
            by_id.setdefault(rec.id, []).append(rec)
        for rec in records:
            versions = by_id[rec.id]
            i = versions.index(rec)
            prev = versions[i + 1] if i + 1 < len(versions) else None
            changes = []
            if prev is not None and rec.history_type == "~":
                delta = rec.diff_against(prev)
                changes = [(c.field, c.old, c.new) for c in delta.changes]
            rows.append(
                {
                    "what": label,
                    "object": str(rec.instance) if rec.history_type != "-" else f"{label} #{rec.id}",
                    "type": {"+": "created", "~": "changed", "-": "deleted"}[rec.history_type],
                    "who": rec.history_user,
                    "when": rec.history_date,
                    "changes": changes,
                }
            )
    rows.sort(key=lambda r: r["when"], reverse=True)
    return rows[:limit]


def lab_panels(labs: list[LabResult]) -> dict:
    """Pivot results into one row per collection time and one column per analyte, in the
    fixed analyte order, keeping only columns that have a value."""
    from protocols.analytes import ANALYTES

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
