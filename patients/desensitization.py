"""A patient's desensitization plan: eligibility, approval, daily records, pauses and the
prescriber's decisions, completion (reference §9; protocols.desensitization for the math).

- Start needs a recorded rash that has resolved; a history of SJS, TEN or DRESS refuses
  (§9.3 requirement 1); AGEP, blistering or mucosal involvement needs a prescriber's
  written override.
- A reaction pauses the plan (§9.3 requirement 5: no automatic step-down); a missed dose
  pauses it with the tolerance warning (requirement 3). A prescriber decides.
- Completing the last day moves the dose to the final dose through a normal dose change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from django.db import transaction
from django.utils import timezone

from accounts.clinic_time import clinic_today, clinic_zone
from accounts.models import User
from patients.models import ClinicalEvent, DesensitizationPlan, Patient, PlanDay, PlanDecision, TreatmentCourse
from patients.services import dose_change_record
from protocols import dates
from protocols import desensitization as rules
from protocols.dosing import LADDER, Dose, DoseState, Reason
from protocols.errors import InputError
from protocols.models import DesensitizationProtocol


@dataclass
class Preview:
    days: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # block approval
    needs_override: list[str] = field(default_factory=list)  # approval needs a written reason
    final_dose: int | None = None


def scar_events(patient: Patient) -> list[ClinicalEvent]:
    return [e for e in ClinicalEvent.objects.filter(patient=patient, kind="rash") if e.is_scar]


def plan_preview(*, patient: Patient, protocol: DesensitizationProtocol, start: date,
                 rash_event: ClinicalEvent | None) -> Preview:
    preview = Preview()
    scars = scar_events(patient)
    if scars:
        kinds = ", ".join(sorted({e.get_scar_display() for e in scars}))
        preview.problems.append(f"Re-challenge is contraindicated after {kinds}: {rules.SCAR_SOURCE}.")
    if rash_event is None:
        preview.problems.append("Choose the recorded rash that this re-challenge follows; it must have resolved.")
    elif rash_event.resolved_date is None:
        preview.problems.append("The rash has not resolved: a re-challenge starts only after it has (reference §9.2).")
    elif rash_event.scar == "agep" or rash_event.blistering_or_mucosal:
        preview.needs_override.append("The rash had AGEP, blistering or mucosal involvement: a prescriber may go ahead "
                                      "only with a written reason (reference §9.3 requirement 1).")
    why = protocol.why_not_startable()
    if why:
        preview.problems.append(why)
        return preview
    course = TreatmentCourse.objects.filter(patient=patient, end_date__isnull=True).first()
    if course is None or course.dose_state not in (DoseState.WITHHELD, DoseState.ON_DRUG):
        preview.problems.append("The patient needs an open course with alectinib withheld (or still given).")
    steps = protocol.step_list
    strengths = patient.clinic.strengths
    preview.problems += rules.unmakeable(steps, strengths)
    preview.final_dose = rules.final_dose(steps)
    if preview.final_dose not in LADDER:
        preview.problems.append(f"The plan ends at {preview.final_dose} mg twice daily, which is not a dose level of the "
                                "label (600/450/300 mg, reference §3).")
    if problem := dates.date_problem(start, today=clinic_today(patient.clinic), planned=True):
        # Checked before the calendar: 9999-12-31 + 23 days is past date.max.
        preview.problems.append(f"Start date: {problem}")
        return preview
    if start < clinic_today(patient.clinic):
        preview.problems.append("The start date is in the past.")
    for day in rules.calendar(steps, start):
        preview.days.append({
            "number": day.number, "date": day.day, "step": day.step, "morning_mg": day.morning_mg,
            "evening_mg": day.evening_mg, "morning_caps": rules.describe_capsules(day.morning_mg, strengths),
            "evening_caps": rules.describe_capsules(day.evening_mg, strengths),
        })
    return preview


def plan_start(*, patient: Patient, protocol: DesensitizationProtocol, rash_event: ClinicalEvent, start: date,
               user: User, override_reason: str = "", corticosteroid: str = "", prior_checkpoint_inhibitor: bool = False,
               checkpoint_inhibitor_last_dose: date | None = None) -> DesensitizationPlan:
    preview = plan_preview(patient=patient, protocol=protocol, start=start, rash_event=rash_event)
    if prior_checkpoint_inhibitor and checkpoint_inhibitor_last_dose is not None:
        problem = dates.date_problem(checkpoint_inhibitor_last_dose, today=clinic_today(patient.clinic),
                                     born=patient.date_of_birth)
        if problem:
            preview.problems.append(f"Last checkpoint-inhibitor dose: {problem}")
    if preview.problems:
        raise InputError(" ".join(preview.problems))
    if preview.needs_override and not override_reason.strip():
        raise InputError(" ".join(preview.needs_override))

    with transaction.atomic():
        course = TreatmentCourse.objects.select_for_update().get(patient=patient, end_date__isnull=True)
        if DesensitizationPlan.objects.filter(course=course).running().exists():
            raise InputError("A desensitization plan is already running for this course.")
        plan = DesensitizationPlan.objects.create(
            course=course, protocol=protocol, rash_event=rash_event, start_date=start,
            strengths=patient.clinic.strengths, final_dose_mg_bid=preview.final_dose, override_reason=override_reason.strip(),
            approved_by=user, corticosteroid=corticosteroid.strip()[:120], prior_checkpoint_inhibitor=prior_checkpoint_inhibitor,
            checkpoint_inhibitor_last_dose=checkpoint_inhibitor_last_dose if prior_checkpoint_inhibitor else None,
        )
        _materialize(plan, from_step=1, start=start, first_number=1)
        dose_change_record(course=course, to=Dose(DoseState.DESENSITIZATION), effective_date=start,
                           reason=Reason.RECHALLENGE, ordered_by=user, recorded_by=user, triggering_event=rash_event,
                           note=f"Desensitization started: {protocol} ({len(protocol.step_list)} steps).")
    return plan


def _materialize(plan: DesensitizationPlan, *, from_step: int, start: date, first_number: int) -> None:
    PlanDay.objects.bulk_create(
        PlanDay(plan=plan, number=d.number, date=d.day, step=d.step, morning_mg=d.morning_mg, evening_mg=d.evening_mg)
        for d in rules.calendar(plan.protocol.step_list, start, from_step=from_step, first_day_number=first_number)
    )


def plan_days(plan: DesensitizationPlan) -> list[PlanDay]:
    return list(plan.days.filter(cancelled=False).order_by("date", "number"))


def today_day(plan: DesensitizationPlan, today: date | None = None) -> PlanDay | None:
    today = today or clinic_today(plan.patient.clinic)
    days = plan_days(plan)
    return next((d for d in days if d.date == today), None) or next((d for d in days if not d.recorded), None)


def pausing_reaction(plan: DesensitizationPlan) -> PlanDay | None:
    """The day whose reaction paused the plan, or None when it is not paused by a reaction
    (a missed dose, a day not recorded): the plan page shows the reaction guidance, not
    the missed-dose one (reference §9.3 requirements 3 and 5). Only reactions recorded
    after the last decision count: earlier ones were decided on."""
    if plan.status != DesensitizationPlan.Status.PAUSED:
        return None
    days = plan.days.filter(reaction=True, recorded_at__isnull=False)
    last_decision = plan.decisions.order_by("-decided_at").values_list("decided_at", flat=True).first()
    if last_decision is not None:
        days = days.filter(recorded_at__gt=last_decision)
    return days.order_by("-recorded_at").first()


def _pause(plan: DesensitizationPlan, reason: str) -> None:
    plan.status, plan.pause_reason = DesensitizationPlan.Status.PAUSED, reason
    plan.save(update_fields=["status", "pause_reason"])


def evening_open(day: PlanDay, *, zone: tzinfo, now: datetime | None = None) -> bool:
    """Whether the evening dose of `day` can be recorded yet (protocols.desensitization.EVENING_DOSE_FROM)."""
    return (now or timezone.now()) >= rules.evening_dose_from(day.date, zone)


def plan_record_day(*, plan: DesensitizationPlan, day: PlanDay, user: User, morning_taken: bool | None,
                    evening_taken: bool | None, reaction: bool = False, reaction_grade: int | None = None,
                    note: str = "", today: date | None = None, now: datetime | None = None) -> DesensitizationPlan:
    """Record one day. A dose is True (taken), False (missed) or None (not answered): a day
    is complete when every dose is answered; a reaction or a missed dose may be recorded
    before that (it pauses the plan). The evening dose is answered only from
    EVENING_DOSE_FROM on the clinic's clock."""
    today = today or clinic_today(plan.patient.clinic)
    now = now or timezone.now()
    zone = clinic_zone(plan.patient.clinic)
    with transaction.atomic():
        plan = DesensitizationPlan.objects.select_for_update().get(pk=plan.pk)
        day = PlanDay.objects.select_for_update().get(pk=day.pk, plan=plan)
        if plan.status != DesensitizationPlan.Status.ACTIVE:
            raise InputError("The plan is paused or finished: a prescriber must decide before more days are recorded.")
        if day.cancelled or day.recorded:
            raise InputError("This day is already recorded or was replaced.")
        if day.date > today:
            raise InputError("This day has not come yet.")
        earlier = plan.days.filter(cancelled=False, date__lt=day.date, recorded_at__isnull=True)
        if earlier.exists():
            raise InputError("Record the earlier days first (or a missed day pauses the plan).")
        if reaction and reaction_grade not in (1, 2, 3, 4):
            raise InputError("Give the CTCAE grade of the reaction.")
        before_evening = not evening_open(day, zone=zone, now=now)
        if evening_taken is not None and before_evening:
            raise InputError(f"The evening dose of day {day.number} cannot be recorded before "
                             f"{rules.EVENING_DOSE_FROM:%H:%M} (clinic time). A reaction or a missed morning dose can "
                             "be recorded now.")
        doses = (("morning", day.morning_mg, morning_taken), ("evening", day.evening_mg, evening_taken))
        missed = any(mg and taken is False for _, mg, taken in doses)
        unanswered = [name for name, mg, taken in doses if mg and taken is None]
        if unanswered and not (reaction or missed):
            if unanswered == ["evening"] and before_evening:
                raise InputError(f"The evening dose is due from {rules.EVENING_DOSE_FROM:%H:%M} (clinic time): record "
                                 f"day {day.number} after then, with both doses. A reaction or a missed morning dose "
                                 "can be recorded now.")
            raise InputError(f"Say whether the {' and the '.join(unanswered)} dose was taken or missed.")
        day.morning_taken, day.evening_taken = morning_taken, evening_taken
        day.reaction, day.reaction_grade = reaction, reaction_grade if reaction else None
        day.note, day.recorded_by, day.recorded_at = note.strip()[:300], user, timezone.now()
        day.save()
        if reaction:
            _pause(plan, f"Reaction (grade {reaction_grade}) on day {day.number}, step {day.step}: a prescriber decides "
                         "whether to repeat the step, step back or stop (reference §9.3 requirement 5).")
        elif missed:
            _pause(plan, f"Dose missed on day {day.number}. {rules.TOLERANCE_WARNING}")
        elif not plan.days.filter(cancelled=False, recorded_at__isnull=True).exists():
            _complete(plan, user, day.date)
    return plan


def _complete(plan: DesensitizationPlan, user: User, on: date) -> None:
    plan.status, plan.ended_at = DesensitizationPlan.Status.COMPLETED, timezone.now()
    plan.outcome = f"Completed: all {plan.days.filter(cancelled=False).count()} days taken."
    plan.save(update_fields=["status", "ended_at", "outcome"])
    dose_change_record(course=plan.course, to=Dose(DoseState.ON_DRUG, plan.final_dose_mg_bid),
                       effective_date=on + timedelta(days=1), reason=Reason.RECHALLENGE, ordered_by=plan.approved_by,
                       recorded_by=user, note=f"Desensitization completed ({plan.protocol}); maintenance at "
                                              f"{plan.final_dose_mg_bid} mg twice daily.")


def plans_flag_missed(*, now: datetime | None = None, today: date | None = None) -> int:
    """Pause running plans with a past day left unrecorded (called by the monitoring job,
    like an overdue item). "Past" is on the plan's clinic's date at `now`: a plan day is a
    day of the patient's calendar, so an Auckland plan is not paused in the Auckland
    evening because the server's date has moved on. `today` forces one date for all."""
    now = now or timezone.now()
    paused = 0
    plans = DesensitizationPlan.objects.filter(status=DesensitizationPlan.Status.ACTIVE).select_related("course__patient__clinic")
    for plan in plans:
        day = today or clinic_today(plan.patient.clinic, now)
        missed = plan.days.filter(cancelled=False, recorded_at__isnull=True, date__lt=day).order_by("date").first()
        if missed is None:
            continue
        with transaction.atomic():
            claimed = DesensitizationPlan.objects.filter(pk=plan.pk, status=DesensitizationPlan.Status.ACTIVE).update(
                status=DesensitizationPlan.Status.PAUSED,
                pause_reason=f"Day {missed.number} ({missed.date:%d %b}) was not recorded: doses may have been missed. "
                             f"{rules.TOLERANCE_WARNING}")
            paused += claimed
    return paused


def plan_decide(*, plan: DesensitizationPlan, decision: str, reason: str, user: User, resume_on: date | None = None,
                today: date | None = None, read_at_version: int | None = None) -> DesensitizationPlan:
    today = today or clinic_today(plan.patient.clinic)
    if decision not in PlanDecision.Decision.values:
        raise InputError("Choose a decision.")
    if not reason.strip():
        raise InputError("Give the reason for the decision.")
    if resume_on is not None and (problem := dates.date_problem(resume_on, today=today, planned=True)):
        raise InputError(f"Resume on: {problem}")  # before the calendar arithmetic can overflow

    with transaction.atomic():
        plan = DesensitizationPlan.objects.select_for_update().get(pk=plan.pk)
        if plan.status != DesensitizationPlan.Status.PAUSED:
            raise InputError("Only a paused plan needs a decision.")
        if read_at_version is not None:
            plan.check_version(read_at_version)
        PlanDecision.objects.create(plan=plan, decision=decision, reason=reason.strip(), resume_on=resume_on, decided_by=user)
        if decision == PlanDecision.Decision.STOP:
            plan.status, plan.ended_at = DesensitizationPlan.Status.FAILED, timezone.now()
            plan.outcome = f"Failed: {reason.strip()} {rules.FAILED_INFORMATION}"
            plan.save(update_fields=["status", "ended_at", "outcome"])
            plan.days.filter(recorded_at__isnull=True).update(cancelled=True)
            dose_change_record(course=plan.course, to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=plan.final_dose_mg_bid),
                               effective_date=today, reason=Reason.RECHALLENGE, ordered_by=user, recorded_by=user,
                               note=f"Desensitization stopped: {reason.strip()}")
            return plan
        resume_on = resume_on or today + timedelta(days=1)
        if resume_on < today:
            raise InputError("Resume today or later.")
        recorded = list(plan.days.filter(recorded_at__isnull=False, cancelled=False).order_by("date"))
        current_step = recorded[-1].step if recorded else 1
        from_step = {
            PlanDecision.Decision.CONTINUE: None,
            PlanDecision.Decision.REPEAT: current_step,
            PlanDecision.Decision.STEP_BACK: max(1, current_step - 1),
            PlanDecision.Decision.RESTART: 1,
        }[decision]
        pending = list(plan.days.filter(recorded_at__isnull=True, cancelled=False).order_by("date"))
        plan.days.filter(recorded_at__isnull=True, cancelled=False).update(cancelled=True)
        number = (recorded[-1].number if recorded else 0) + 1
        if from_step is None:
            # Continue: the days not yet taken, shifted to start on resume_on.
            PlanDay.objects.bulk_create(
                PlanDay(plan=plan, number=number + i, date=resume_on + timedelta(days=i), step=d.step,
                        morning_mg=d.morning_mg, evening_mg=d.evening_mg) for i, d in enumerate(pending))
        else:
            _materialize(plan, from_step=from_step, start=resume_on, first_number=number)
        plan.status, plan.pause_reason = DesensitizationPlan.Status.ACTIVE, ""
        plan.save(update_fields=["status", "pause_reason"])
    return plan
