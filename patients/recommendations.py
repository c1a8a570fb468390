"""The label-driven recommendation workflow around protocols.engine.

- recommendation_refresh: after new results or events, build the engine's case from the
  record, run it, and store a recommendation when it asks for something new.
- recommendation_accept / recommendation_override: the prescriber's decision. Accepting
  writes the dose change event in the same transaction; nothing else changes a dose.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.clinic_time import clinic_day_start, clinic_today
from accounts.models import Clinic, User
from patients.models import (
    ClinicalEvent,
    DoseChangeEvent,
    LabResult,
    Patient,
    Recommendation,
    RecommendationComment,
    TreatmentCourse,
)
from patients.services import dose_change_record, pre_hold_dose, recommendation_due
from protocols.analytes import format_decimal, to_decimal
from protocols.dosing import Dose, DoseState, Reason
from protocols.engine import Case, Lab, Snapshot, assess
from protocols.errors import InputError

TOXICITY_NAMES = {
    "H": "Hepatotoxicity", "ILD": "Pneumonitis / ILD", "R": "Renal impairment", "B": "Bradycardia",
    "C": "CPK increased", "HA": "Hemolytic anemia", "HB": "Anemia", "GI": "GI perforation",
    "SCAR": "Severe cutaneous adverse reaction", "UNLISTED": "Toxicity without a label rule",
}


def _toxicity_name(rule_id: str) -> str:
    for prefix in ("ILD", "HA", "HB", "H", "R", "B", "C", "GI", "SCAR", "UNLISTED"):
        if rule_id.startswith(prefix):
            return TOXICITY_NAMES[prefix]
    return rule_id


def _cpk_episodes(series: list[Lab]) -> int:
    """§4.5 A5: earlier episodes of CPK > 5× ULN on the course (oldest first in `series`);
    the episode the newest value belongs to is not an earlier one."""
    runs, inside = 0, False
    for lab in series:
        over = lab.exceeds(5)
        if over and not inside:
            runs += 1
        inside = over
    return max(runs - 1 if inside else runs, 0)


def hold_started(course: TreatmentCourse) -> DoseChangeEvent | None:
    """The event that began the hold in force (an amendment of a hold does not)."""
    if course.dose_state != DoseState.WITHHELD:
        return None
    return (course.dose_events.filter(to_state=DoseState.WITHHELD).exclude(from_state=DoseState.WITHHELD)
            .order_by("-effective_date", "-pk").first())


def _hold_since(hold: DoseChangeEvent | None, clinic: Clinic) -> datetime | None:
    """From when results count as taken during the hold: the result or the onset of the
    event that caused it, else its effective date (from the start of that day in the
    clinic). Recovery needs results from then on."""
    if hold is None:
        return None
    if hold.triggering_lab_id:
        return hold.triggering_lab.collected_at
    day = hold.triggering_event.onset_date if hold.triggering_event_id else hold.effective_date
    return clinic_day_start(clinic, day)


UNLISTED_KINDS = (ClinicalEvent.Kind.MYALGIA, ClinicalEvent.Kind.RASH, ClinicalEvent.Kind.CNS_PROGRESSION,
                  ClinicalEvent.Kind.OTHER)


def _event_facts(course: TreatmentCourse) -> tuple[dict[str, Any], dict[str, list[ClinicalEvent]]]:
    """What the clinical events of the course say for the engine, and which events say it."""
    events = list(ClinicalEvent.objects.filter(patient=course.patient, onset_date__gte=course.start_date)
                  .order_by("onset_date", "pk"))
    open_events = [e for e in events if e.resolved_date is None]

    def latest(kind: str, among: list[ClinicalEvent]) -> ClinicalEvent | None:
        found = [e for e in among if e.kind == kind]
        return found[-1] if found else None

    ild = next((e for e in reversed(events) if e.kind == "ild" and e.ild_causality == "treatment_related"), None)
    ild_latest = latest("ild", events)
    brady = latest("bradycardia", open_events)
    brady_latest = latest("bradycardia", events)
    hemo = latest("hemolysis", events)
    chole = latest("cholestasis", open_events)
    gi = latest("gi_perforation", open_events)
    scar = next((e for e in reversed(events) if e.kind == "rash" and e.is_scar), None)
    agep = next((e for e in reversed(events) if e.kind == "rash" and e.scar == ClinicalEvent.Scar.AGEP), None)
    respiratory = latest("respiratory", open_events)
    unlisted = [e for e in open_events if e.kind in UNLISTED_KINDS and (e.grade or 0) >= 3 and not e.is_scar]
    lt_before = [e for e in events if e.kind == "bradycardia" and e.bradycardia == "life_threatening" and e != brady]
    hemo_status = hemo.hemolysis_status if hemo else None
    held = course.dose_state == DoseState.WITHHELD
    # A resolved bradycardia event during a hold is the "asymptomatic (grade ≤ 1)" of §4.4.
    bradycardia = brady.bradycardia if brady else ("asymptomatic" if held and brady_latest else None)
    facts = {
        "ild": ild is not None,
        "ild_under_investigation": bool(ild_latest and ild_latest.resolved_date is None
                                        and ild_latest.ild_causality == "investigating"),
        "ild_other_cause": bool(ild_latest and ild_latest.ild_causality == "other_cause"),
        # Symptoms reported after the last ILD record (a diagnosis answers them, §4.2).
        "respiratory_symptoms": bool(respiratory and (ild_latest is None or ild_latest.onset_date < respiratory.onset_date)),
        "bradycardia": bradycardia,
        "contributing_medication": bool(brady and brady.contributing_medication),
        "contributing_medication_adjusted": bool(brady and brady.contributing_medication_adjusted),
        "hemolysis_suspected": hemo_status == "suspected" and hemo.resolved_date is None,
        "hemolysis_confirmed": {"confirmed": True, "not_confirmed": False}.get(hemo_status or ""),
        "hemolysis_resolved": bool(hemo_status == "confirmed" and hemo.resolved_date),
        # Only a clinician's explicit statement excludes H2 (reference §4.1): documented
        # cholestasis, or hemolysis confirmed by the work-up; a suspicion is not one.
        "cholestasis_or_hemolysis": bool(chole or (hemo_status == "confirmed" and hemo.resolved_date is None)),
        "gi_perforation": gi is not None,
        "scar": scar.scar if scar else (agep.scar if agep else None),
        "unlisted": tuple((e.notes.splitlines()[0][:60] if e.kind == "other" and e.notes.strip()
                           else e.get_kind_display(), e.grade) for e in unlisted),
        "life_threatening_bradycardia_occurrences": len(lt_before),
    }
    used = {"ild": [e for e in (ild or ild_latest or respiratory,) if e], "bradycardia": [e for e in (brady,) if e],
            "hemolysis": [e for e in (hemo,) if e], "cholestasis": [e for e in (chole,) if e],
            "gi": [e for e in (gi,) if e], "scar": [e for e in (scar,) if e], "unlisted": unlisted}
    return facts, used


def build_case(course: TreatmentCourse) -> tuple[Case, dict[str, LabResult], dict[str, list[ClinicalEvent]]]:
    """The engine's case from the record: the newest on-treatment value of each analyte
    (exact, as reported), the baselines, the events, the counts the rules need (§4.4,
    §4.5) and, while withheld, the values as they stood at each result during the hold."""
    patient = course.patient
    on_treatment = list(LabResult.objects.filter(patient=patient, is_baseline=False,
                                                 collected_at__gte=course.started_at).order_by("collected_at", "pk"))
    baseline: dict[str, Lab] = {}
    for lab in LabResult.objects.filter(patient=patient, is_baseline=True).order_by("collected_at"):
        baseline[lab.analyte] = lab.measurement()

    since = _hold_since(hold_started(course), patient.clinic)
    newest: dict[str, LabResult] = {}
    state: dict[str, Lab] = {}
    cpk_series: list[Lab] = []
    snapshots: list[Snapshot] = []
    for i, row in enumerate(on_treatment):
        lab = row.measurement()
        newest[row.analyte], state[row.analyte] = row, lab
        if row.analyte == "cpk":
            cpk_series.append(lab)
        last_at_time = i + 1 == len(on_treatment) or on_treatment[i + 1].collected_at != row.collected_at
        if since is not None and row.collected_at >= since and last_at_time and i + 1 < len(on_treatment):
            snapshots.append(Snapshot(dict(state), _cpk_episodes(cpk_series)))

    facts, used = _event_facts(course)
    if course.dose_state == DoseState.WITHHELD:
        dose = pre_hold_dose(course) or 600
        withheld: dict[str, Any] | None = {
            "resume": None if course.resume_dose_mg_bid is None else ("same" if course.resume_dose_mg_bid == dose else "reduced"),
            "resume_dose_mg_bid": course.resume_dose_mg_bid,
            "resume_when": course.recovery_condition,
            "since": since.isoformat() if since else None,
        }
    else:
        dose, withheld = course.dose_mg_bid or 600, None
    first = course.dose_events.order_by("effective_date", "pk").first()
    case = Case(
        dose_mg_bid=dose,
        labs=dict(state),
        baseline=baseline,
        cpk_over_5x_uln_occurrences=_cpk_episodes(cpk_series),
        withheld=withheld,
        during_hold=snapshots,
        regime=course.regime,
        starting_dose_mg_bid=first.to_dose_mg_bid if first else None,
        **facts,
    )
    return case, newest, used


EVENT_RULES = {"ILD": "ild", "B": "bradycardia", "HA": "hemolysis", "H2-EXCLUDED": "cholestasis", "GI": "gi",
               "SCAR": "scar", "UNLISTED": "unlisted"}


def _triggers(out: dict, labs: dict[str, LabResult], events: dict[str, list[ClinicalEvent]]):
    lab_ids, event_ids = set(), set()
    analytes = {a for r in out["rules"] for a in r.get("analytes", [])}
    if out["action"] == "resume":
        analytes |= {c.get("analyte") for c in out["resume_when"] if c.get("analyte")}
    for analyte in analytes:
        if analyte in labs:
            lab_ids.add(labs[analyte].pk)
    for rule in out["rules"]:
        for prefix, kind in EVENT_RULES.items():
            if rule["id"].startswith(prefix):
                event_ids |= {e.pk for e in events.get(kind, [])}
    return lab_ids, event_ids


def _jsonable(case: Case) -> dict[str, Any]:
    """The case as stored beside the recommendation (exact values to 6 decimals)."""

    def num(x: Fraction | None) -> str | None:
        return None if x is None else format_decimal(to_decimal(x, 6))

    def lab(x: Lab) -> dict[str, str | None]:
        return {"value": num(x.value), "uln": num(x.uln), "lln": num(x.lln),
                "collected_at": x.collected_at.isoformat() if x.collected_at else None}

    data = {k: v for k, v in case.__dict__.items() if k not in ("labs", "baseline", "during_hold", "unlisted")}
    data["labs"] = {a: lab(x) for a, x in case.labs.items()}
    data["baseline"] = {a: lab(x) for a, x in case.baseline.items()}
    data["unlisted"] = [list(u) for u in case.unlisted]
    data["during_hold"] = [{"labs": {a: lab(x) for a, x in snap.labs.items()},
                            "cpk_over_5x_uln_occurrences": snap.cpk_over_5x_uln_occurrences} for snap in case.during_hold]
    return data


def recommendation_refresh(*, patient: Patient) -> Recommendation | None:
    """Run the engine for the patient's open course; store a new recommendation when it
    asks for something that has not been asked for the same results before."""
    course = (
        TreatmentCourse.objects.filter(patient=patient, end_date__isnull=True,
                                       dose_state__in=[DoseState.ON_DRUG, DoseState.WITHHELD])
        .select_related("patient__clinic").first()
    )
    if course is None or patient.archived_at:
        return None
    case, labs, events = build_case(course)
    out = assess(case)
    action = out["action"]
    if action == "continue":
        return None
    if course.dose_state == DoseState.WITHHELD and action == "withhold" and not out.get("hold_changed"):
        return None  # still held as recorded: the hold's own recovery condition stands
    lab_ids, event_ids = _triggers(out, labs, events)
    # The course version too: after any change of the course (a prescriber's own dose
    # change supersedes what was pending) the same results are asked about again.
    raw = (f"{action}|{sorted(r['id'] for r in out['rules'])}|{sorted(lab_ids)}|{sorted(event_ids)}|{course.dose_state}"
           f"|{out.get('resume_dose_mg_bid')}|v{course.version}")
    key = f"{action}:{hashlib.sha1(raw.encode()).hexdigest()[:24]}"  # noqa: S324 - a key, not a secret
    with transaction.atomic():
        existing = Recommendation.objects.filter(course=course, trigger_key=key).first()
        if existing:
            return existing
        Recommendation.objects.filter(course=course).supersede()
        trig_labs = [labs[a] for a in labs if labs[a].pk in lab_ids]
        trig_lab = max(trig_labs, key=lambda x: x.collected_at) if trig_labs else None
        trig_event = next((e for k in ("scar", "gi", "ild", "bradycardia", "hemolysis", "cholestasis", "unlisted")
                           for e in events.get(k, []) if e.pk in event_ids), None)
        return Recommendation.objects.create(
            course=course, action=action, output=out, inputs=_jsonable(case), trigger_key=key,
            triggering_lab=trig_lab, triggering_event=trig_event,
        )


DEFAULT_RECHECK_DAYS = 7  # shown as the default; the prescriber sets it (reference §4.1, §11)


def recheck_analytes(criteria: list[dict[str, Any]]) -> list[str]:
    """The analytes a hold's recovery condition waits for: what a recheck interval covers."""
    return sorted({c["analyte"] for c in criteria if isinstance(c.get("analyte"), str)})


def recommendation_accept(
    *, recommendation: Recommendation, user: User, option: int | None = None, effective_date: date | None = None,
    recheck_every_days: int | None = None, read_at_version: int | None = None,
) -> DoseChangeEvent | None:
    """Accept the recommendation: write the dose change it asks for in the same
    transaction. A prescriber-review recommendation (no rule in the label, §4.7) has no
    dose change: accepting it records that it was reviewed, and returns None. The page's
    course version (`read_at_version`) must still be current (issue #12 item 4)."""
    effective_date = effective_date or clinic_today(recommendation.course.patient.clinic)
    with transaction.atomic():
        rec = Recommendation.objects.select_for_update().select_related("course").get(pk=recommendation.pk)
        if rec.status != Recommendation.Status.PENDING:
            raise InputError(f"This recommendation is already {rec.get_status_display().lower()}.")
        _check_course_version(rec, read_at_version)
        options = rec.options
        if rec.action == "clinician_decision":
            if option is None or not 0 <= option < len(options):
                raise InputError("Choose one of the options.")
        else:
            option = 0
        chosen = options[option]
        course = rec.course
        grades = rec.output.get("grades", {})
        rule_ids = [r["id"] for r in rec.output["rules"] if r["id"] not in ("RECOVERED", "FLOOR", "REGIME", "HOLD-TIGHTENED")]
        analytes = {a for r in rec.output["rules"] for a in r.get("analytes", [])}
        grade = max([grades[a] for a in analytes if a in grades] or [rec.triggering_event.grade if rec.triggering_event and rec.triggering_event.grade else 0]) or None
        toxicity = ", ".join(dict.fromkeys(_toxicity_name(r) for r in rule_ids))[:60] + (f" ({', '.join(rule_ids)})" if rule_ids else "")
        if chosen["action"] == "review":
            rec.status = Recommendation.Status.ACCEPTED
            rec.decided_by, rec.decided_at, rec.chosen_option = user, timezone.now(), option
            rec.decision_note = "Reviewed by the prescriber; no dose change."
            rec.save(update_fields=["status", "decided_by", "decided_at", "chosen_option", "decision_note"])
            return None
        if chosen["action"] == "withhold":
            # A hold pending a work-up or a causality has no resume dose yet: it is decided
            # on the result (reference §4.6, §4.2), never defaulted to the pre-hold dose.
            to, reason = Dose(DoseState.WITHHELD, resume_dose_mg_bid=chosen.get("resume_dose_mg_bid")), Reason.TOXICITY
            if recheck_analytes(chosen.get("resume_when", [])):
                recheck_every_days = recheck_every_days or DEFAULT_RECHECK_DAYS
            else:
                recheck_every_days = None
        elif chosen["action"] == "resume":
            to, reason = Dose(DoseState.ON_DRUG, chosen["resume_dose_mg_bid"]), Reason.RECOVERY
            toxicity, grade = "", None
        elif chosen["action"] == "discontinue":
            to, reason = Dose(DoseState.DISCONTINUED), Reason.TOXICITY
        else:
            raise InputError("There is no dose change to accept for this option.")
        event = _record(course, to, effective_date, reason, user, rec, toxicity[:80], grade, chosen.get("resume_when", []),
                        recheck_every_days if chosen["action"] == "withhold" else None)
        rec.status = Recommendation.Status.ACCEPTED
        rec.decided_by, rec.decided_at, rec.chosen_option, rec.dose_event = user, timezone.now(), option, event
        rec.save(update_fields=["status", "decided_by", "decided_at", "chosen_option", "dose_event"])
    return event


def _record(course, to, effective_date, reason, user, rec, toxicity, grade, recovery, recheck) -> DoseChangeEvent:
    return dose_change_record(
        course=course, to=to, effective_date=effective_date, reason=reason, ordered_by=user, recorded_by=user,
        toxicity=toxicity, toxicity_grade=grade, triggering_lab=rec.triggering_lab, triggering_event=rec.triggering_event,
        recovery_condition=recovery, note=f"Accepted: {rec.headline}.", recommendation=rec, recheck_every_days=recheck,
    )


def _check_course_version(rec: Recommendation, read_at_version: int | None) -> None:
    if read_at_version is not None:
        TreatmentCourse.objects.select_for_update().get(pk=rec.course_id).check_version(read_at_version)


def recommendation_override(*, recommendation: Recommendation, user: User, reason: str,
                            read_at_version: int | None = None) -> Recommendation:
    if not reason.strip():
        raise InputError("Give the reason for overriding the recommendation.")
    with transaction.atomic():
        rec = Recommendation.objects.select_for_update().get(pk=recommendation.pk)
        if rec.status != Recommendation.Status.PENDING:
            raise InputError(f"This recommendation is already {rec.get_status_display().lower()}.")
        _check_course_version(rec, read_at_version)
        rec.status = Recommendation.Status.OVERRIDDEN
        rec.decided_by, rec.decided_at, rec.decision_note = user, timezone.now(), reason.strip()
        rec.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return rec


def recommendation_comment(*, recommendation: Recommendation, user: User, text: str) -> RecommendationComment:
    if not text.strip():
        raise InputError("Write a comment first.")
    return RecommendationComment.objects.create(recommendation=recommendation, author=user, text=text.strip()[:2000])



@receiver(recommendation_due)
def _on_recommendation_due(sender, patient: Patient, **kwargs) -> None:
    recommendation_refresh(patient=patient)
