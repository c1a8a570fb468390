"""The label-driven recommendation workflow around protocols.engine.

- recommendation_refresh: after new results or events, build the engine's case from the
  record, run it, and store a recommendation when it asks for something new.
- recommendation_accept / recommendation_override: the prescriber's decision. Accepting
  writes the dose change event in the same transaction; nothing else changes a dose.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from patients.models import (
    ClinicalEvent,
    DoseChangeEvent,
    LabResult,
    Patient,
    Recommendation,
    RecommendationComment,
    TreatmentCourse,
)
from patients.services import pre_hold_dose
from protocols.dosing import Dose, DoseState, Reason
from protocols.engine import Case, Lab, assess
from protocols.errors import InputError

TOXICITY_NAMES = {
    "H": "Hepatotoxicity", "ILD": "Pneumonitis / ILD", "R": "Renal impairment", "B": "Bradycardia",
    "C": "CPK increased", "HA": "Hemolytic anemia",
}


def _toxicity_name(rule_id: str) -> str:
    for prefix in ("ILD", "HA", "H", "R", "B", "C"):
        if rule_id.startswith(prefix):
            return TOXICITY_NAMES[prefix]
    return rule_id


def _course_start(course: TreatmentCourse) -> datetime:
    return timezone.make_aware(datetime.combine(course.start_date, time.min))


def build_case(course: TreatmentCourse) -> tuple[Case, dict[str, LabResult], dict[str, ClinicalEvent]]:
    """The engine's case from the record: the newest on-treatment value of each analyte,
    the baselines, open clinical events, and the counts the rules need (§4.4, §4.5)."""
    patient = course.patient
    labs: dict[str, LabResult] = {}
    cpk_series: list[LabResult] = []
    on_treatment = LabResult.objects.filter(patient=patient, is_baseline=False, collected_at__gte=_course_start(course))
    for lab in on_treatment.order_by("-collected_at"):
        labs.setdefault(lab.analyte, lab)
        if lab.analyte == "cpk":
            cpk_series.append(lab)
    baseline: dict[str, Lab] = {}
    for lab in LabResult.objects.filter(patient=patient, is_baseline=True).order_by("collected_at"):
        baseline[lab.analyte] = Lab(lab.value, lab.uln, lab.lln)

    # §4.5 A5: count every earlier episode of CPK > 5x ULN on this course.
    runs, inside = 0, False
    for lab in reversed(cpk_series):
        over = lab.uln is not None and lab.value > 5 * lab.uln
        if over and not inside:
            runs += 1
        inside = over
    cpk_occurrences = runs - 1 if inside else runs

    events = list(ClinicalEvent.objects.filter(patient=patient, onset_date__gte=course.start_date).order_by("onset_date", "pk"))
    open_events = [e for e in events if e.resolved_date is None]
    used: dict[str, ClinicalEvent] = {}

    def latest(kind: str, among: list[ClinicalEvent]) -> ClinicalEvent | None:
        found = [e for e in among if e.kind == kind]
        return found[-1] if found else None

    ild = next((e for e in reversed(events) if e.kind == "ild" and e.ild_causality == "treatment_related"), None)
    ild_open = latest("ild", open_events)
    brady = latest("bradycardia", open_events)
    hemo = latest("hemolysis", open_events)
    chole = latest("cholestasis", open_events)
    for key, event in (("ild", ild or ild_open), ("bradycardia", brady), ("hemolysis", hemo), ("cholestasis", chole)):
        if event:
            used[key] = event
    lt_before = [e for e in events if e.kind == "bradycardia" and e.bradycardia == "life_threatening" and e != brady]

    if course.dose_state == DoseState.WITHHELD:
        dose = pre_hold_dose(course) or 600
        withheld: dict[str, Any] | None = {
            "resume": "same" if course.resume_dose_mg_bid == dose else "reduced",
            "resume_dose_mg_bid": course.resume_dose_mg_bid,
            "resume_when": course.recovery_condition,
        }
    else:
        dose, withheld = course.dose_mg_bid or 600, None
    first = course.dose_events.order_by("effective_date", "pk").first()
    case = Case(
        dose_mg_bid=dose,
        labs={a: Lab(lab.value, lab.uln, lab.lln) for a, lab in labs.items()},
        baseline=baseline,
        ild=ild is not None,
        ild_under_investigation=bool(ild_open and ild_open.ild_causality == "investigating"),
        bradycardia=brady.bradycardia if brady else None,
        contributing_medication=bool(brady and brady.contributing_medication),
        contributing_medication_adjusted=bool(brady and brady.contributing_medication_adjusted),
        hemolysis_suspected=bool(hemo and hemo.hemolysis_status in ("suspected", "not_confirmed")),
        hemolysis_confirmed={"confirmed": True, "not_confirmed": False}.get(hemo.hemolysis_status) if hemo else None,
        cholestasis_or_hemolysis=bool(chole or (hemo and hemo.hemolysis_status in ("suspected", "confirmed"))),
        cpk_over_5x_uln_occurrences=max(cpk_occurrences, 0),
        life_threatening_bradycardia_occurrences=len(lt_before),
        withheld=withheld,
        regime=course.regime,
        starting_dose_mg_bid=first.to_dose_mg_bid if first else None,
    )
    return case, labs, used


EVENT_RULES = {"ILD": "ild", "ILD-INVESTIGATING": "ild", "B": "bradycardia", "HA": "hemolysis", "H2-EXCLUDED": "cholestasis"}


def _triggers(out: dict, labs: dict[str, LabResult], events: dict[str, ClinicalEvent]):
    lab_ids, event_ids = set(), set()
    analytes = {a for r in out["rules"] for a in r.get("analytes", [])}
    if out["action"] == "resume":
        analytes |= {c.get("analyte") for c in out["resume_when"] if c.get("analyte")}
    for analyte in analytes:
        if analyte in labs:
            lab_ids.add(labs[analyte].pk)
    for rule in out["rules"]:
        for prefix, kind in EVENT_RULES.items():
            if rule["id"].startswith(prefix) and kind in events:
                event_ids.add(events[kind].pk)
    return lab_ids, event_ids


def _jsonable(case: Case) -> dict[str, Any]:
    def lab(x: Lab) -> dict[str, str | None]:
        return {"value": str(x.value), "uln": str(x.uln) if x.uln else None, "lln": str(x.lln) if x.lln else None}

    data = {k: v for k, v in case.__dict__.items() if k not in ("labs", "baseline")}
    data["labs"] = {a: lab(x) for a, x in case.labs.items()}
    data["baseline"] = {a: lab(x) for a, x in case.baseline.items()}
    return data


def recommendation_refresh(*, patient: Patient) -> Recommendation | None:
    """Run the engine for the patient's open course; store a new recommendation when it
    asks for something that has not been asked for the same results before."""
    course = (
        TreatmentCourse.objects.filter(patient=patient, end_date__isnull=True,
                                       dose_state__in=[DoseState.ON_DRUG, DoseState.WITHHELD])
        .select_related("patient").first()
    )
    if course is None or patient.archived_at:
        return None
    case, labs, events = build_case(course)
    out = assess(case)
    action = out["action"]
    if action == "continue":
        return None
    if course.dose_state == DoseState.WITHHELD and action == "withhold":
        return None  # still held; the hold's own recovery condition is already recorded
    lab_ids, event_ids = _triggers(out, labs, events)
    raw = f"{action}|{sorted(r['id'] for r in out['rules'])}|{sorted(lab_ids)}|{sorted(event_ids)}|{course.dose_state}"
    key = f"{action}:{hashlib.sha1(raw.encode()).hexdigest()[:24]}"  # noqa: S324 - a key, not a secret
    with transaction.atomic():
        existing = Recommendation.objects.filter(course=course, trigger_key=key).first()
        if existing:
            return existing
        Recommendation.objects.filter(course=course, status=Recommendation.Status.PENDING).update(
            status=Recommendation.Status.SUPERSEDED
        )
        trig_labs = [labs[a] for a in labs if labs[a].pk in lab_ids]
        trig_lab = max(trig_labs, key=lambda x: x.collected_at) if trig_labs else None
        trig_event = next((events[k] for k in ("ild", "bradycardia", "hemolysis", "cholestasis")
                           if k in events and events[k].pk in event_ids), None)
        return Recommendation.objects.create(
            course=course, action=action, output=out, inputs=_jsonable(case), trigger_key=key,
            triggering_lab=trig_lab, triggering_event=trig_event,
        )


def recommendation_accept(
    *, recommendation: Recommendation, user: User, option: int | None = None, effective_date: date | None = None
) -> DoseChangeEvent:
    effective_date = effective_date or timezone.localdate()
    with transaction.atomic():
        rec = Recommendation.objects.select_for_update().select_related("course").get(pk=recommendation.pk)
        if rec.status != Recommendation.Status.PENDING:
            raise InputError(f"This recommendation is already {rec.get_status_display().lower()}.")
        options = rec.options
        if rec.action == "clinician_decision":
            if option is None or not 0 <= option < len(options):
                raise InputError("Choose one of the options.")
        else:
            option = 0
        chosen = options[option]
        course = rec.course
        grades = rec.output.get("grades", {})
        rule_ids = [r["id"] for r in rec.output["rules"] if r["id"] not in ("RECOVERED", "FLOOR", "REGIME")]
        analytes = {a for r in rec.output["rules"] for a in r.get("analytes", [])}
        grade = max([grades[a] for a in analytes if a in grades] or [rec.triggering_event.grade if rec.triggering_event and rec.triggering_event.grade else 0]) or None
        toxicity = ", ".join(dict.fromkeys(_toxicity_name(r) for r in rule_ids))[:60] + (f" ({', '.join(rule_ids)})" if rule_ids else "")
        if chosen["action"] == "withhold":
            resume = chosen.get("resume_dose_mg_bid") or pre_hold_dose(course) or course.dose_mg_bid
            to, reason = Dose(DoseState.WITHHELD, resume_dose_mg_bid=resume), Reason.TOXICITY
        elif chosen["action"] == "resume":
            to, reason = Dose(DoseState.ON_DRUG, chosen["resume_dose_mg_bid"]), Reason.RECOVERY
            toxicity, grade = "", None
        elif chosen["action"] == "discontinue":
            to, reason = Dose(DoseState.DISCONTINUED), Reason.TOXICITY
        else:
            raise InputError("There is no dose change to accept for this option.")
        event = _record(course, to, effective_date, reason, user, rec, toxicity[:80], grade, chosen.get("resume_when", []))
        rec.status = Recommendation.Status.ACCEPTED
        rec.decided_by, rec.decided_at, rec.chosen_option, rec.dose_event = user, timezone.now(), option, event
        rec.save(update_fields=["status", "decided_by", "decided_at", "chosen_option", "dose_event"])
    return event


def _record(course, to, effective_date, reason, user, rec, toxicity, grade, recovery) -> DoseChangeEvent:
    from patients.services import dose_change_record

    return dose_change_record(
        course=course, to=to, effective_date=effective_date, reason=reason, ordered_by=user, recorded_by=user,
        toxicity=toxicity, toxicity_grade=grade, triggering_lab=rec.triggering_lab, triggering_event=rec.triggering_event,
        recovery_condition=recovery, note=f"Accepted: {rec.headline}.", recommendation=rec,
    )


def recommendation_override(*, recommendation: Recommendation, user: User, reason: str) -> Recommendation:
    if not reason.strip():
        raise InputError("Give the reason for overriding the recommendation.")
    with transaction.atomic():
        rec = Recommendation.objects.select_for_update().get(pk=recommendation.pk)
        if rec.status != Recommendation.Status.PENDING:
            raise InputError(f"This recommendation is already {rec.get_status_display().lower()}.")
        rec.status = Recommendation.Status.OVERRIDDEN
        rec.decided_by, rec.decided_at, rec.decision_note = user, timezone.now(), reason.strip()
        rec.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return rec


def recommendation_comment(*, recommendation: Recommendation, user: User, text: str) -> RecommendationComment:
    if not text.strip():
        raise InputError("Write a comment first.")
    return RecommendationComment.objects.create(recommendation=recommendation, author=user, text=text.strip()[:2000])

