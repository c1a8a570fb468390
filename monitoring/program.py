"""The oral therapy program (issue #16): education, supply and structured check-ins, and
what a check-in finding does to the record. The arithmetic and the label's meaning are
pure (protocols.oral_program); this module reads and writes the record.

A check-in is a monitoring requirement (code "checkin", rules.CHECK_IN_SCHEDULE), so it
is due, overdue, followed up, flagged and sent in the digest like any test. What it
records feeds the rules through the same doors as a typed record: a clinical event
(patients.services.clinical_event_record: the engine is asked again), a medicine on the
course, and the CPK due date (services.course_schedule_recompute reads the check-ins)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.clinic_time import clinic_day_start, clinic_today, on_clinic_days
from accounts.models import User
from monitoring import rules
from monitoring.models import ClinicSettings, MonitoringItem
from patients.models import (
    CheckIn,
    ClinicalEvent,
    ConcomitantMedication,
    Dispensing,
    EducationRecord,
    PlanDay,
    Prescription,
    ProgramStatus,
    TreatmentCourse,
)
from patients.services import LabEntry, PanelError, clinical_data_changed, clinical_event_record, lab_panel_record
from protocols import dates, oral_program
from protocols.analytes import ANALYTES
from protocols.dosing import DoseState
from protocols.errors import InputError


def _changed(course: TreatmentCourse) -> None:
    transaction.on_commit(lambda: clinical_data_changed.send(sender=TreatmentCourse, patient_id=course.patient_id))


def _day_problem(course: TreatmentCourse, day: date, what: str) -> None:
    """The one date rule (protocols.dates) on the clinic's calendar, and not long before
    the course (a prescription or the education may precede the first dose)."""
    patient = course.patient
    if problem := dates.date_problem(day, today=clinic_today(patient.clinic), born=patient.date_of_birth):
        raise InputError(f"The {what} date: {problem}")
    if day < course.start_date - timedelta(days=60):
        raise InputError(f"The {what} date is more than 60 days before the course started.")


# --- education (reference §2, §6) -------------------------------------------------------------------

def education_topics(course: TreatmentCourse, day: date | None = None) -> list[oral_program.Topic]:
    step = desensitization_step(course, day)
    return oral_program.topics(dose_mg_bid=current_dose(course), regime=course.regime, step=step)


def desensitization_step(course: TreatmentCourse, day: date | None = None) -> tuple[int, int] | None:
    """(morning mg, evening mg) of the desensitization day on `day` (default: the clinic's
    today), while the course is in desensitization."""
    if course.dose_state != DoseState.DESENSITIZATION:
        return None
    day = day or clinic_today(course.patient.clinic)
    return oral_program.dose_on(dose_periods(course), day)


def current_dose(course: TreatmentCourse) -> int | None:
    """The twice-daily dose on the ladder the patient takes now (None while withheld,
    stopped or in desensitization, whose doses change day by day)."""
    if course.dose_state == DoseState.ON_DRUG:
        return course.dose_mg_bid
    return None


def dose_on(course: TreatmentCourse, day: date) -> int | None:
    """The twice-daily dose taken on `day` (None: none, or two different doses)."""
    morning, evening = oral_program.dose_on(dose_periods(course), day)
    return morning if morning == evening and morning else None


def education_record(*, course: TreatmentCourse, user: User, given_on: date, topics: list[str],
                     with_whom: str = "", notes: str = "") -> EducationRecord:
    """The checklist, complete: every topic covered, or nothing is saved."""
    listed = education_topics(course)
    known = [t.code for t in listed]
    missing = [t.title for t in listed if t.code not in topics]
    unknown = [t for t in topics if t not in known]
    if unknown:
        raise InputError(f"Unknown topic(s): {', '.join(unknown)}.")
    if missing:
        raise InputError(f"Cover every topic before recording the education; not ticked: {', '.join(missing)}.")
    _day_problem(course, given_on, "education")
    with transaction.atomic():
        # The dose taught is the dose of the day it was given (a record entered later keeps
        # it); before the first dose, the starting dose.
        taught = dose_on(course, max(given_on, course.start_date))
        record = EducationRecord.objects.create(course=course, given_on=given_on, topics=known,
                                                dose_mg_bid=taught, with_whom=with_whom.strip(),
                                                notes=notes.strip(), recorded_by=user)
        _changed(course)
    return record


def education_state(course: TreatmentCourse) -> dict:
    """For the patient page: the last education, and whether the dose taught is the dose
    taken now (a dose change re-issues the handout)."""
    last = course.education.order_by("-given_on", "-pk").first()
    return {"last": last, "dose": current_dose(course), "missing": last is None,
            "stale": last is not None and education_needed(course)[0] == ProgramStatus.Education.DOSE_CHANGED}


def oral_program_from() -> date | None:
    """Courses started from this date are expected to have education recorded in the app
    (earlier ones were taught on paper before the app recorded it); None: every course."""
    return date.fromisoformat(settings.ORAL_PROGRAM_FROM) if settings.ORAL_PROGRAM_FROM else None


# --- supply (reference §2, §3, §9.2) -----------------------------------------------------------------

def dose_periods(course: TreatmentCourse) -> list[oral_program.Period]:
    """The doses taken day by day: the ladder's dose from each dose change, nothing while
    withheld or stopped, and each desensitization day's two doses."""
    periods = []
    for e in course.dose_events.order_by("effective_date", "pk"):
        mg = e.to_dose_mg_bid if e.to_state == DoseState.ON_DRUG and e.to_dose_mg_bid else 0
        if e.to_state != DoseState.DESENSITIZATION:
            periods.append(oral_program.Period(e.effective_date, mg, mg))
    days = PlanDay.objects.filter(plan__course=course, cancelled=False).select_related("plan").order_by("date", "number")
    by_date: dict[date, oral_program.Period] = {}
    ends: dict[int, tuple[date, int]] = {}
    for d in days:
        by_date[d.date] = oral_program.Period(d.date, d.morning_mg, d.evening_mg)
        ends[d.plan_id] = (d.date, d.plan.final_dose_mg_bid)
    for last, final in ends.values():
        # After a plan's last scheduled day the dose it ends on continues (§9.2: "24 onward,
        # 600/600"), unless a dose change on a later day says otherwise.
        after = last + timedelta(days=1)
        if after not in by_date and not any(p.start >= after for p in periods):
            by_date[after] = oral_program.Period(after, final, final)
    if by_date:
        # A plan's days replace the ladder on their dates.
        periods = [p for p in periods if p.start not in by_date] + list(by_date.values())
    merged: dict[date, oral_program.Period] = {}
    for p in sorted(periods, key=lambda p: p.start):
        merged[p.start] = p
    return list(merged.values())


def fills_of(course: TreatmentCourse) -> list[oral_program.Fill]:
    """The dispensings that count (not withdrawn)."""
    return [oral_program.Fill(day, n, mg) for day, n, mg in
            course.dispensings.filter(void_reason="").values_list("dispensed_on", "capsules", "strength_mg")]


def prescribed_days(course: TreatmentCourse) -> list[date]:
    return list(course.prescriptions.filter(void_reason="").values_list("written_on", flat=True))


def supply_of(course: TreatmentCourse, today: date, *, fills: list[oral_program.Fill] | None = None,
              periods: list[oral_program.Period] | None = None) -> oral_program.Supply:
    """The supply on `today` (protocols.oral_program.supply), from what was already read
    where given."""
    counts = [oral_program.Count(day, n) for day, n in
              course.check_ins.filter(capsules_on_hand__isnull=False).values_list("done_on", "capsules_on_hand")]
    return oral_program.supply(fills=fills_of(course) if fills is None else fills,
                               periods=dose_periods(course) if periods is None else periods, today=today, counts=counts)


def education_needed(course: TreatmentCourse) -> tuple[str, int | None]:
    """'' when the education is recorded at the dose taken now (or none is recorded for a
    course started before the program, taught on paper), 'missing' or 'dose_changed'
    otherwise; with the dose last taught."""
    since = oral_program_from()
    last = list(course.education.order_by("-given_on", "-pk").values_list("dose_mg_bid", flat=True)[:1])
    taught = last[0] if last else None
    if not last:
        on_paper = since is not None and course.start_date < since
        return ProgramStatus.Education.DONE if on_paper else ProgramStatus.Education.MISSING, None
    if course.dose_state == DoseState.ON_DRUG and taught != course.dose_mg_bid:
        return ProgramStatus.Education.DOSE_CHANGED, taught
    return ProgramStatus.Education.DONE, taught


def program_recompute(*, course: TreatmentCourse, today: date | None = None) -> ProgramStatus | None:
    """Store the course's program state for the worklist. Courses off treatment keep none."""
    if not course.is_active or course.patient.archived_at is not None:
        ProgramStatus.objects.filter(course=course).delete()
        return None
    today = today or clinic_today(course.patient.clinic)
    education, taught = education_needed(course)
    values: dict = {"clinic_id": course.patient.clinic_id, "computed_on": today, "education": education,
                    "taught_dose_mg_bid": taught, "on_hand": None, "runs_out_on": None, "unfilled_since": None, "pdc": None}
    fills, written = fills_of(course), prescribed_days(course)
    if fills or written:
        s = supply_of(course, today, fills=fills)
        pdc = s.pdc
        values.update(
            on_hand=s.capsules, runs_out_on=s.runs_out_on,
            unfilled_since=oral_program.unfilled_since(written, [f.day for f in fills]),
            pdc=None if pdc is None else (Decimal(pdc.numerator) / Decimal(pdc.denominator)).quantize(Decimal("0.0001")))
    status, _ = ProgramStatus.objects.update_or_create(course=course, defaults=values)
    return status


def _supply_record(model: type[Prescription | Dispensing], day_field: str, *, course: TreatmentCourse, user: User,
                   day: date, capsules: int, strength_mg: int, note: str) -> Prescription | Dispensing:
    _day_problem(course, day, model._meta.verbose_name)
    _positive(capsules, strength_mg, course)
    with transaction.atomic():
        record = model.objects.create(course=course, capsules=capsules, strength_mg=strength_mg, note=note.strip(),
                                      recorded_by=user, **{day_field: day})
        _changed(course)
    return record


def prescription_record(*, course: TreatmentCourse, user: User, written_on: date, capsules: int,
                        strength_mg: int = oral_program.CAPSULE_MG, note: str = "") -> Prescription:
    return _supply_record(Prescription, "written_on", course=course, user=user, day=written_on, capsules=capsules,
                          strength_mg=strength_mg, note=note)  # type: ignore[return-value]


def dispensing_record(*, course: TreatmentCourse, user: User, dispensed_on: date, capsules: int,
                      strength_mg: int = oral_program.CAPSULE_MG, note: str = "") -> Dispensing:
    return _supply_record(Dispensing, "dispensed_on", course=course, user=user, day=dispensed_on, capsules=capsules,
                          strength_mg=strength_mg, note=note)  # type: ignore[return-value]


STRENGTHS = (20, 40, 150)  # reference §2: 150 mg (US/EU); 20, 40 and 150 mg in Japan
MAX_CAPSULES = 2000  # more than a year at 4 capsules twice daily: a typing slip


def _positive(capsules: int, strength_mg: int, course: TreatmentCourse) -> None:
    if not 1 <= capsules <= MAX_CAPSULES:
        raise InputError(f"Capsules: a whole number from 1 to {MAX_CAPSULES}.")
    if strength_mg not in STRENGTHS:
        raise InputError("Strength: 150 mg (US/EU), or 20 or 40 mg (Japan) (reference §2).")
    if strength_mg != oral_program.CAPSULE_MG and not course.regime.startswith("jp"):
        raise InputError(f"{strength_mg} mg capsules exist only in Japan; under the {course.get_regime_display()} the "
                         "capsule is 150 mg (reference §2).")


def supply_void(*, record: Prescription | Dispensing, user: User, reason: str) -> None:
    """Withdraw a prescription or dispensing entered in error (kept, with the reason)."""
    if not reason.strip():
        raise InputError("Say why the record is withdrawn, e.g. 'entered on the wrong patient'.")
    if record.void_reason:
        raise InputError("This record was already withdrawn.")
    with transaction.atomic():
        record.void_reason = reason.strip()[:300]
        record.save(update_fields=["void_reason"])
        _changed(record.course)


# --- check-ins (reference §8.3, §8.6, §8.7, §4) ---------------------------------------------------------

@dataclass(frozen=True)
class CheckInEntry:
    done_on: date
    mode: str
    missed_doses: int = 0
    missed_reason: str = ""
    vomited_doses: int = 0
    symptoms: dict | None = None
    respiratory_new_or_worse: bool = False
    heart_rate: int | None = None
    new_medicine: str = ""
    new_medicine_category: str = ""
    stopped_medicines: str = ""
    stop_medicine_ids: tuple[int, ...] = ()  # heart-rate-lowering medicines of the course, stopped
    capsules_on_hand: int | None = None
    plan: str = ""


def _check_entry(course: TreatmentCourse, e: CheckInEntry) -> dict[str, int]:
    _day_problem(course, e.done_on, "check-in")
    if e.done_on < course.start_date:
        raise InputError("A check-in is on treatment: on or after the course's start date.")
    if e.mode not in CheckIn.Mode.values:
        raise InputError("Say whether the check-in was by phone or a visit.")
    symptoms = {k: int(v) for k, v in (e.symptoms or {}).items() if int(v)}
    for code, grade in symptoms.items():
        if problem := oral_program.grade_problem(code, grade):
            raise InputError(problem)
    if e.respiratory_new_or_worse and not symptoms.keys() & {"dyspnea", "cough"}:
        raise InputError("'New or worse' describes breathlessness or cough: grade the dyspnea or the cough.")
    hr = ANALYTES["heart_rate"]
    if e.heart_rate is not None and not hr.minimum <= e.heart_rate <= hr.maximum:
        raise InputError(f"Heart rate: {hr.minimum} to {hr.maximum} bpm.")
    if e.new_medicine.strip() and not e.new_medicine_category:
        raise InputError("Say which kind of heart-rate-lowering medicine it is (reference §4.4).")
    if e.new_medicine_category and not e.new_medicine.strip():
        raise InputError("Name the new heart-rate-lowering medicine, or leave its kind empty.")
    if e.missed_doses and not e.missed_reason.strip():
        raise InputError("Say why doses were missed (forgot, side effects, ran out…).")
    previous = course.check_ins.filter(done_on__lt=e.done_on).order_by("-done_on").values_list("done_on", flat=True).first()
    since = previous or course.start_date
    # The doses due since the last contact (from the first dose): none on days withheld.
    first = since + timedelta(days=1) if previous else since
    due = oral_program.doses_due(dose_periods(course), first, e.done_on)
    if e.missed_doses + e.vomited_doses > due:
        raise InputError(f"{e.missed_doses + e.vomited_doses} doses missed or vomited, but only {due} were due since "
                         f"{'the last contact' if previous else 'the first dose'} ({since:%d %b %Y}).")
    stoppable = set(_active_medicines(course, e.done_on).values_list("pk", flat=True))
    if set(e.stop_medicine_ids) - stoppable:
        raise InputError("Only a medicine of this course that is still taken can be stopped.")
    return symptoms


def _active_medicines(course: TreatmentCourse, day: date):
    return course.medications.filter(Q(end_date__isnull=True) | Q(end_date__gt=day), start_date__lte=day)


def check_in_item(course: TreatmentCourse) -> MonitoringItem | None:
    return MonitoringItem.objects.filter(course=course, requirement__code=rules.CHECK_IN).first()


def check_in_record(*, course: TreatmentCourse, user: User, entry: CheckInEntry) -> CheckIn:
    """Record a check-in and act on what it found (protocols.oral_program.consequences):
    a bradycardia, rash or unlisted grade ≥ 3 event and a respiratory-symptoms event go to
    the engine and so to a prescriber; a new medicine joins the course; muscle pain makes
    a CPK due (services.course_schedule_recompute)."""
    symptoms = _check_entry(course, entry)
    found = oral_program.consequences(symptoms, respiratory_new_or_worse=entry.respiratory_new_or_worse,
                                      heart_rate=entry.heart_rate)
    item = check_in_item(course)
    due = item.due_date if item else None
    grace = ClinicSettings.for_clinic(course.patient.clinic_id).grace_days
    on_time = None if due is None else entry.done_on <= due + timedelta(days=grace)
    with transaction.atomic():
        if entry.heart_rate is not None:
            _heart_rate(course, user, entry)
        check_in = CheckIn.objects.create(
            course=course, done_on=entry.done_on, mode=entry.mode, due_on=due, on_time=on_time,
            missed_doses=entry.missed_doses, missed_reason=entry.missed_reason.strip(), vomited_doses=entry.vomited_doses,
            symptoms=symptoms, respiratory_new_or_worse=entry.respiratory_new_or_worse, heart_rate=entry.heart_rate,
            new_medicine=entry.new_medicine.strip(), new_medicine_category=entry.new_medicine_category,
            stopped_medicines=entry.stopped_medicines.strip(), capsules_on_hand=entry.capsules_on_hand,
            plan=entry.plan.strip(), recorded_by=user,
            findings=[_act(c, course=course, user=user, entry=entry, symptoms=symptoms) for c in found]
            + _medicine(course=course, entry=entry) + _stop_medicines(course=course, entry=entry))
        _changed(course)
    return check_in


def _heart_rate(course: TreatmentCourse, user: User, entry: CheckInEntry) -> None:
    """The heart rate taken at the check-in is a result like any other (trend chart, the
    bradycardia recovery 'heart rate ≥ 60 bpm', §4.4): at the time of recording on the
    day itself, else at noon of the clinic's day."""
    clinic = course.patient.clinic
    now = timezone.now()
    when = now if entry.done_on == clinic_today(clinic) else clinic_day_start(clinic, entry.done_on) + timedelta(hours=12)
    try:
        lab_panel_record(patient=course.patient, collected_at=when, entries=[LabEntry("heart_rate", str(entry.heart_rate))],
                         entered_by=user, now=now)
    except PanelError as exc:
        raise InputError(f"The heart rate could not be recorded: {'; '.join(exc.errors.values())}") from None


def _stop_medicines(*, course: TreatmentCourse, entry: CheckInEntry) -> list[dict]:
    out = []
    for med in _active_medicines(course, entry.done_on).filter(pk__in=entry.stop_medicine_ids):
        med.end_date = entry.done_on
        med.save(update_fields=["end_date"])
        out.append({"route": "medicine_stopped", "text": f"{med.name} stopped on {entry.done_on:%d %b %Y}.",
                    "source": "Reference §4.4 (B1/B4: a contributing medicine stopped or adjusted)", "medicine": med.pk})
    return out


def _note(entry: CheckInEntry, text: str) -> str:
    return f"From the {entry.mode} check-in of {entry.done_on:%d %b %Y}: {text}"


def _act(c: oral_program.Consequence, *, course: TreatmentCourse, user: User, entry: CheckInEntry,
         symptoms: dict[str, int]) -> dict:
    """Do what one consequence asks; returns it as kept on the check-in."""
    record = {"route": c.route, "text": c.text, "source": c.source}
    fields: dict | None = None
    if c.route == "ild_review":
        fields = {"kind": ClinicalEvent.Kind.RESPIRATORY, "notes": _note(entry, c.text)}
    elif c.route == "bradycardia":
        # §4.4: a heart-rate-lowering medicine taken is a possible contributor; stopped at this
        # check-in, it is "identified and stopped" (B1: resume at the same dose, with the US
        # warning text's reduced dose offered, A1). The prescriber confirms either way.
        taking = list(_active_medicines(course, entry.done_on).values_list("pk", "name"))
        stopped = [name for pk, name in taking if pk in entry.stop_medicine_ids]
        meds = f" Heart-rate-lowering medicines: {', '.join(n for _, n in taking)}" + (
            f"; stopped at this check-in: {', '.join(stopped)}." if stopped else "; none stopped.") if taking else ""
        fields = {"kind": ClinicalEvent.Kind.BRADYCARDIA, "bradycardia": ClinicalEvent.Bradycardia.SYMPTOMATIC,
                  "contributing_medication": bool(taking), "contributing_medication_adjusted": bool(stopped),
                  "notes": _note(entry, c.text) + meds}
    elif c.route == "rash":
        fields = {"kind": ClinicalEvent.Kind.RASH, "grade": symptoms["rash"], "notes": _note(entry, c.text)}
    elif c.route == "review":
        event = _review_events(course=course, user=user, entry=entry, symptoms=symptoms)
        record["events"] = [e.pk for e in event]
    if fields is not None:
        event = clinical_event_record(patient=course.patient, recorded_by=user, onset_date=entry.done_on, **fields)
        record["events"] = [event.pk]
    return record


def _review_events(*, course: TreatmentCourse, user: User, entry: CheckInEntry, symptoms: dict[str, int]) -> list:
    """Grade ≥ 3 symptoms without a label rule: a myalgia event for muscle pain, an 'other'
    event named after the term for the rest (reference §4.7: prescriber review)."""
    events = []
    brady_handled = entry.heart_rate is not None and entry.heart_rate < oral_program.SLOW_HEART_RATE
    for s in oral_program.SYMPTOMS:
        grade = symptoms.get(s.code, 0)
        if grade < 3 or s.code == "rash" or (brady_handled and s.code in ("dizziness", "syncope")):
            continue
        kind = ClinicalEvent.Kind.MYALGIA if s.code == "myalgia" else ClinicalEvent.Kind.OTHER
        notes = f"{s.term}\n" + _note(entry, f"{s.term} grade {grade} ({s.source}).")
        events.append(clinical_event_record(patient=course.patient, recorded_by=user, onset_date=entry.done_on,
                                            kind=kind, grade=grade, notes=notes))
    return events


def _medicine(*, course: TreatmentCourse, entry: CheckInEntry) -> list[dict]:
    if not entry.new_medicine.strip():
        return []
    med = ConcomitantMedication.objects.create(course=course, name=entry.new_medicine.strip()[:120],
                                               category=entry.new_medicine_category, start_date=entry.done_on)
    return [{"route": "medicine", "text": f"{med.name} added to the medicines that can slow the heart.",
             "source": "Reference §4.4 (B1/B2: contributing medicines)", "medicine": med.pk}]


def dizzy_without_rate_since(course: TreatmentCourse, since: date | None) -> date | None:
    """The first check-in after `since` (the last heart rate and blood pressure) that
    reported dizziness or fainting without a heart rate: the vitals are due that day, to
    tell a symptomatic bradycardia (§4.4) from the rest."""
    q = course.check_ins.filter(Q(symptoms__has_key="dizziness") | Q(symptoms__has_key="syncope"), heart_rate__isnull=True)
    if since is not None:
        q = q.filter(done_on__gt=since)
    return q.order_by("done_on").values_list("done_on", flat=True).first()


def muscle_pain_since(course: TreatmentCourse, since: date | None) -> date | None:
    """The first check-in reporting muscle pain after `since` (the last CPK): the CPK is
    due that day (reference §4.5, §5)."""
    q = course.check_ins.filter(symptoms__has_key="myalgia")
    if since is not None:
        q = q.filter(done_on__gt=since)
    return q.order_by("done_on").values_list("done_on", flat=True).first()


# --- adherence --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PageFacts:
    """What the program page shows about supply and adherence, computed once."""

    supply: oral_program.Supply
    unfilled_since: date | None
    adherence: dict


def page_facts(course: TreatmentCourse, today: date) -> PageFacts:
    periods, fills = dose_periods(course), fills_of(course)
    supply = supply_of(course, today, fills=fills, periods=periods)
    return PageFacts(supply, oral_program.unfilled_since(prescribed_days(course), [f.day for f in fills]),
                     adherence(course, supply, periods))


def adherence(course: TreatmentCourse, s: oral_program.Supply, periods: list[oral_program.Period]) -> dict:
    """Per patient: the proportion of days covered by the dispensings, and the doses the
    patient said they missed at each check-in (as a share of the doses since the previous
    contact)."""
    points = []
    previous: date | None = None
    for c in course.check_ins.order_by("done_on", "pk"):
        first = previous + timedelta(days=1) if previous else course.start_date
        due = oral_program.doses_due(periods, first, c.done_on)
        share = oral_program.missed_share(c.missed_doses, due)
        points.append({"day": c.done_on, "missed": c.missed_doses, "due": due,
                       "percent": None if share is None else round(100 * float(share), 1)})
        previous = c.done_on
    pdc = s.pdc
    return {"pdc": None if pdc is None else round(100 * float(pdc), 1), "days_needed": s.days_needed,
            "days_covered": s.days_covered, "points": points}


# --- worklist sections ------------------------------------------------------------------------------

def education_missing(statuses: QuerySet[ProgramStatus]) -> QuerySet[ProgramStatus]:
    """Courses started without recorded education, or taught at another dose than the one
    taken now (stored by program_recompute; one partial index)."""
    return statuses.exclude(education=ProgramStatus.Education.DONE)


def supply_flags(statuses: QuerySet[ProgramStatus], todays: Mapping[int, date],
                 fill_check_days: Mapping[int, int]) -> QuerySet[ProgramStatus]:
    """Courses whose supply runs out within 7 days, or whose prescription has waited longer
    than the clinic's fill-check days, each clinic on its own today."""

    def flagged(cid: int, today: date) -> Q:
        return (Q(runs_out_on__lte=today + timedelta(days=oral_program.RUNS_OUT_WARNING_DAYS))
                | Q(unfilled_since__lte=today - timedelta(days=fill_check_days[cid])))

    return statuses.filter(on_clinic_days(todays, flagged))
