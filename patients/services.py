"""Workflows that change a patient's record. Keyword-only, one transaction each.

Every change of clinical data ends with `clinical_data_changed` sent after commit, so that
other apps (monitoring: next due dates) follow without patients importing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts.clinic_time import clinic_zone
from accounts.models import User
from patients.models import (
    ClinicalEvent,
    DoseChangeEvent,
    LabImport,
    LabResult,
    Patient,
    Recommendation,
    ReferenceRange,
    TreatmentCourse,
)
from protocols import dates
from protocols.analytes import ANALYTES, normalise_unit, to_decimal
from protocols.dosing import Dose, DoseState, Reason, check_transition
from protocols.errors import InputError
from protocols.labs import Entry as LabEntryRead
from protocols.labs import EntryError, Lab, read_entry

# Sent after commit with patient_id=...; monitoring recomputes due dates on it.
clinical_data_changed = Signal()
# Sent inside the transaction with patient=...: patients.recommendations runs the engine.
recommendation_due = Signal()

@dataclass
class _Followups:
    refresh: dict[int, Patient]
    changed: set[int]


_batched: ContextVar[_Followups | None] = ContextVar("batched_followups", default=None)


@contextmanager
def followups_batched() -> Iterator[None]:
    """Inside this block, what follows a change of the record (the engine asked again,
    due dates recomputed) is done once per patient when the block ends, on the record as
    it then stands, rather than after each panel: an import of twenty collection times
    for one patient runs the engine once, and leaves the same pending recommendation the
    twenty typed panels would have left (each one superseding the one before)."""
    pending = _Followups({}, set())
    token = _batched.set(pending)
    try:
        yield
    finally:
        _batched.reset(token)
    for patient in pending.refresh.values():
        _refresh_recommendation(patient)
    for patient_id in sorted(pending.changed):
        _changed(patient_id)


def _changed(patient_id: int) -> None:
    if (pending := _batched.get()) is not None:
        pending.changed.add(patient_id)
        return
    transaction.on_commit(lambda: clinical_data_changed.send(sender=Patient, patient_id=patient_id))


# --- Courses and dose changes ----------------------------------------------------------


def course_start(
    *,
    patient: Patient,
    start_date: date,
    ordered_by: User,
    recorded_by: User,
    dose_mg_bid: int = 600,
    regime: str = TreatmentCourse.Regime.US,
    drug: str = TreatmentCourse.Drug.ALECTINIB,
    note: str = "",
) -> TreatmentCourse:
    with transaction.atomic():
        if TreatmentCourse.objects.filter(patient=patient, drug=drug, end_date__isnull=True).exists():
            raise InputError("This patient already has an open course of this drug; end it first.")
        course = TreatmentCourse.objects.create(patient=patient, drug=drug, regime=regime, start_date=start_date)
        dose_change_record(
            course=course,
            to=Dose(DoseState.ON_DRUG, dose_mg_bid),
            effective_date=start_date,
            reason=Reason.START,
            ordered_by=ordered_by,
            recorded_by=recorded_by,
            note=note,
        )
    course.refresh_from_db()
    return course


def pre_hold_dose(course: TreatmentCourse) -> int | None:
    """The dose in use before the latest hold (None if the course was never held). An
    amendment of a hold (withheld → withheld) does not start a hold."""
    last = (course.dose_events.filter(to_state=DoseState.WITHHELD).exclude(from_state=DoseState.WITHHELD)
            .order_by("-effective_date", "-pk").first())
    return last.from_dose_mg_bid if last else None


def dose_change_record(
    *,
    course: TreatmentCourse,
    to: Dose,
    effective_date: date,
    reason: Reason,
    ordered_by: User,
    recorded_by: User,
    note: str = "",
    toxicity: str = "",
    toxicity_grade: int | None = None,
    triggering_lab: LabResult | None = None,
    triggering_event: ClinicalEvent | None = None,
    recovery_condition: list | None = None,
    recommendation=None,
    recheck_every_days: int | None = None,
    read_at_version: int | None = None,
) -> DoseChangeEvent:
    """Apply one transition: refuse it with a clear message, or write the event and the
    course's new state together. A prescriber's form passes the course version it was
    read at: a course changed since is a VersionConflict, and nothing is written."""
    with transaction.atomic():
        # Lock the course so two prescribers cannot both move it from the same state.
        locked = TreatmentCourse.objects.select_for_update().get(pk=course.pk)
        if read_at_version is not None:
            locked.check_version(read_at_version)
        check_transition(locked.dose, to, reason=Reason(reason), note=note, pre_hold_dose=pre_hold_dose(locked))
        last = locked.dose_events.order_by("-effective_date", "-pk").first()
        if last and effective_date < last.effective_date:
            raise InputError(f"The effective date cannot be before the last dose change ({last.effective_date}).")
        if effective_date < locked.start_date:
            raise InputError(f"The effective date cannot be before the course start ({locked.start_date}).")
        event = DoseChangeEvent.objects.create(
            course=locked,
            from_state=locked.dose_state,
            from_dose_mg_bid=locked.dose_mg_bid,
            to_state=to.state,
            to_dose_mg_bid=to.dose_mg_bid if to.state is DoseState.ON_DRUG else None,
            resume_dose_mg_bid=to.resume_dose_mg_bid if to.state is DoseState.WITHHELD else None,
            recovery_condition=recovery_condition or [],
            recheck_every_days=recheck_every_days if to.state is DoseState.WITHHELD else None,
            effective_date=effective_date,
            reason=reason,
            toxicity=toxicity,
            toxicity_grade=toxicity_grade,
            triggering_lab=triggering_lab,
            triggering_event=triggering_event,
            note=note,
            ordered_by=ordered_by,
            recorded_by=recorded_by,
        )
        locked.dose_state = to.state
        locked.dose_mg_bid = event.to_dose_mg_bid if to.state is not DoseState.DESENSITIZATION else to.dose_mg_bid
        locked.resume_dose_mg_bid = event.resume_dose_mg_bid
        locked.recovery_condition = event.recovery_condition if to.state is DoseState.WITHHELD else []
        locked.recheck_every_days = event.recheck_every_days
        fields = ["dose_state", "dose_mg_bid", "resume_dose_mg_bid", "recovery_condition", "recheck_every_days"]
        if to.state is DoseState.DISCONTINUED:
            locked.end_date = effective_date
            locked.end_reason = (
                TreatmentCourse.EndReason.TOXICITY if reason == Reason.TOXICITY else TreatmentCourse.EndReason.OTHER
            )
            fields += ["end_date", "end_reason"]
        locked.save(update_fields=fields)
        # A dose change answers the recommendation it came from; any other pending one is
        # now stale (it was computed for the state before this change).
        Recommendation.objects.filter(course=locked).exclude(pk=getattr(recommendation, "pk", None)).supersede()
        if recommendation is None:
            # A prescriber's own change: the engine runs again on the new state, so that a
            # result that still asks for a withhold (say, ALT 7.5× ULN while the dose was
            # changed for fatigue) is asked again, not lost with the stale recommendation.
            _refresh_recommendation(locked.patient)
        _changed(locked.patient_id)
    course.refresh_from_db()
    return event


# --- Lab results -------------------------------------------------------------------------


@dataclass
class LabEntry:
    analyte: str
    value: str | Decimal
    unit: str = ""
    uln: str | Decimal | None = None
    lln: str | Decimal | None = None
    comparator: str = ""  # a censored value ("<0.1"): the number is a bound (reliability.md I3)


class PanelError(InputError):
    """Every problem of a lab panel, by field name ('<analyte>_value', 'collected_at', …)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# Where each part of a refused entry is shown: the lab panel has one limit field per
# analyte ('<analyte>_limit'); the correction form has 'uln' and 'lln'.
PANEL_FIELDS = {"analyte": "value", "value": "value", "unit": "unit", "uln": "limit", "lln": "limit"}
CORRECTION_FIELDS = {"analyte": "value", "value": "value", "unit": "value", "uln": "uln", "lln": "lln"}


def _read(entry: LabEntry, defaults: dict[str, Decimal | None], *, fields: dict[str, str],
          prefix: str = "") -> LabEntryRead | None:
    """protocols.labs.read_entry (the one reading of a lab entry), its refusal as a
    PanelError naming the form's field: prefix + fields[the part refused]."""
    try:
        return read_entry(entry.analyte, entry.value, entry.unit, uln=entry.uln, lln=entry.lln, defaults=defaults)
    except EntryError as exc:
        label = ANALYTES[entry.analyte].label if entry.analyte in ANALYTES else entry.analyte
        subject = f"{label} {exc.part.upper()}" if exc.part in ("uln", "lln") else label
        raise PanelError({f"{prefix}{fields[exc.part]}": exc.said_of(subject)}) from None


def clinic_limits(default: ReferenceRange | None) -> dict[str, Decimal | None]:
    return {"uln": default.uln if default else None, "lln": default.lln if default else None}


def baseline_values(patient: Patient) -> dict[str, Lab]:
    """The patient's own pre-treatment result per analyte (the latest one marked baseline)."""
    values: dict[str, Lab] = {}
    for lab in LabResult.objects.filter(patient=patient, is_baseline=True).order_by("collected_at"):
        values[lab.analyte] = lab.measurement()
    return values


def lab_panel_record(
    *,
    patient: Patient,
    collected_at: datetime,
    entries: list[LabEntry],
    entered_by: User,
    is_baseline: bool = False,
    source: str = LabResult.Source.MANUAL,
    lab_import: LabImport | None = None,
    now: datetime | None = None,
) -> list[LabResult]:
    """Validate every entry, then save them all or none (reliability.md I1–I4)."""
    now = now or timezone.now()
    errors: dict[str, str] = {}
    # The one date rule (protocols.dates) here too: an import does not pass the form.
    if problem := dates.datetime_problem(timezone.localtime(collected_at, clinic_zone(patient.clinic)), now=now,
                                         born=patient.date_of_birth):
        errors["collected_at"] = problem
    if not entries:
        errors["__all__"] = "Enter at least one value."
    defaults = {r.analyte: r for r in ReferenceRange.objects.filter(clinic_id=patient.clinic_id)}
    baselines = {} if is_baseline else baseline_values(patient)
    rows: list[LabResult] = []
    for entry in entries:
        try:
            row = _entry_row(entry, defaults, baselines)
        except PanelError as exc:
            errors.update(exc.errors)
            continue
        if row is not None:
            row.patient, row.collected_at, row.source, row.entered_by = patient, collected_at, source, entered_by
            row.is_baseline, row.comparator, row.lab_import = is_baseline, entry.comparator, lab_import
            row._history_user = entered_by
            row.derive(baselines.get(row.analyte))
            row._derived = True
            rows.append(row)
    errors.update(_duplicate_errors(patient, collected_at, [r.analyte for r in rows]))
    if not rows and not errors:
        errors["__all__"] = "Enter at least one value."
    if errors:
        raise PanelError(errors)
    _save_panel(patient, collected_at, rows, is_baseline=is_baseline)
    return rows


def _entry_row(entry: LabEntry, defaults: dict, baselines: dict) -> LabResult | None:
    """One entry read and turned into an unsaved result (None: left empty), or a
    PanelError naming the field."""
    read = _read(entry, clinic_limits(defaults.get(entry.analyte)), fields=PANEL_FIELDS, prefix=f"{entry.analyte}_")
    if read is None:
        return None
    return _unsaved(read)


def _unsaved(read: LabEntryRead) -> LabResult:
    """A result as reported; a limit the lab did not report is the clinic's default, kept
    canonical in uln/lln."""
    uln, lln = read.default_limit("uln"), read.default_limit("lln")
    return LabResult(
        analyte=read.analyte.code, reported_value=read.value, reported_unit=read.unit,
        uln=to_decimal(uln) if uln is not None else None, lln=to_decimal(lln) if lln is not None else None,
        reported_uln=read.reported["uln"], reported_lln=read.reported["lln"],
    )


def _save_panel(patient: Patient, collected_at: datetime, rows: list[LabResult], *, is_baseline: bool) -> None:
    """All the rows or none, then what follows from them (grades, recommendation, due dates)."""
    try:
        with transaction.atomic():
            for row in rows:
                row.save()
            if is_baseline:
                _regrade_after_baseline(patient, {r.analyte for r in rows})
            else:
                _refresh_recommendation(patient)
            _changed(patient.pk)
    except IntegrityError:
        # Another panel for the same time was saved between the check and this save (two
        # nurses, a double submit): lab_unique_per_time refused a row and the block rolled
        # back the whole panel. Say which results are already there.
        clashes = _duplicate_errors(patient, collected_at, [r.analyte for r in rows])
        if not clashes:
            raise
        raise PanelError({**clashes, "__all__": "Another panel for this collection time was saved at the same "
                                                "moment; nothing of this one was saved."}) from None


def _duplicate_errors(patient: Patient, collected_at: datetime, analytes: list[str]) -> dict[str, str]:
    found = LabResult.objects.filter(patient=patient, collected_at=collected_at, analyte__in=analytes)
    return {f"{code}_value": f"A result for {ANALYTES[code].label} collected at this time is already recorded for this patient."
            for code in sorted(set(found.values_list("analyte", flat=True)))}


def _regrade_after_baseline(patient: Patient, analytes: set[str]) -> None:
    """A new baseline changes the grade of on-treatment results graded against it (§8.1)."""
    baselines = baseline_values(patient)
    for lab in LabResult.objects.filter(patient=patient, analyte__in=analytes, is_baseline=False):
        before = (lab.grade, lab.grade_basis, lab.x_uln)
        lab.derive(baselines.get(lab.analyte))
        if (lab.grade, lab.grade_basis, lab.x_uln) != before:
            lab.save(update_fields=["grade", "grade_basis", "grading_version", "x_uln"])


# --- Corrections: results are append-only ------------------------------------------------

CORRECTION_REASON_MIN = 5  # a word or two at least: "transcription error", "wrong patient"


def _retire(lab: LabResult, *, status: str, reason: str, user: User) -> LabResult:
    """Lock the result in force and mark it amended or voided, with who, why and when."""
    reason = (reason or "").strip()
    if len(reason) < CORRECTION_REASON_MIN:
        raise PanelError({"reason": "Give the reason for the correction (it stays on the record)."})
    current = LabResult.every.select_for_update().get(pk=lab.pk)
    if current.status != LabResult.Status.FINAL:
        raise PanelError({"__all__": f"This result is already {current.get_status_display().lower()}: "
                                     "reload the page to see the record as it stands."})
    current.status, current.retired_reason, current.retired_by, current.retired_at = status, reason, user, timezone.now()
    current._history_user = user
    current.save(update_fields=["status", "retired_reason", "retired_by", "retired_at"])
    return current


def _after_correction(lab: LabResult) -> None:
    """What rests on a result follows its correction: a baseline regrades the results
    graded against it (§8.1); pending recommendations built while it stood are
    superseded and the engine runs again on the record as corrected; due dates are
    recomputed (clinical_data_changed)."""
    patient = lab.patient
    if lab.is_baseline:
        _regrade_after_baseline(patient, {lab.analyte})
    Recommendation.objects.filter(course__patient=patient, created_at__gte=lab.entered_at).supersede()
    _refresh_recommendation(patient)
    _changed(patient.pk)


def lab_result_amend(*, lab: LabResult, value: str | Decimal, reason: str, user: User,
                     uln: str | Decimal | None = None, lln: str | Decimal | None = None,
                     unit: str | None = None, comparator: str = "",
                     source: str = LabResult.Source.MANUAL, lab_import: LabImport | None = None) -> LabResult:
    """Correct a result: a new result that amends the old one, same analyte, unit and
    collection time, graded afresh; the old one stays on the record, marked corrected."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PanelError({"value": f"Enter the corrected {ANALYTES[lab.analyte].label} value."})
    # Limits not typed again: the ones the lab reported, else the one the result was graded against.
    # A correction sent in another unit cannot reuse limits reported in the old one.
    same_unit = not unit or normalise_unit(unit) == normalise_unit(lab.reported_unit)
    entry = LabEntry(lab.analyte, value, unit or lab.reported_unit,
                     uln if uln not in (None, "") else lab.reported_uln if same_unit else None,
                     lln if lln not in (None, "") else lab.reported_lln if same_unit else None)
    clinic = clinic_limits(ReferenceRange.objects.filter(clinic_id=lab.patient.clinic_id, analyte=lab.analyte).first())
    read = _read(entry, {"uln": lab.uln or clinic["uln"], "lln": lab.lln or clinic["lln"]}, fields=CORRECTION_FIELDS)
    assert read is not None
    with transaction.atomic():
        old = _retire(lab, status=LabResult.Status.AMENDED, reason=reason, user=user)
        new = _unsaved(read)
        new.patient, new.collected_at, new.is_baseline = old.patient, old.collected_at, old.is_baseline
        new.source, new.lab_import, new.comparator = source, lab_import, comparator  # typed, or the lab's correction
        new.entered_by, new.amends = user, old
        new._history_user = user
        new.save()
        _after_correction(old)
    return new


def lab_result_void(*, lab: LabResult, reason: str, user: User) -> LabResult:
    """Withdraw a result entered in error (wrong patient, wrong sample): it stays on the
    record, marked voided, and nothing is graded, scheduled or recommended from it."""
    with transaction.atomic():
        old = _retire(lab, status=LabResult.Status.VOIDED, reason=reason, user=user)
        _after_correction(old)
    return old


# --- Clinical events ---------------------------------------------------------------------


def clinical_event_record(*, patient: Patient, recorded_by: User, **fields) -> ClinicalEvent:
    event = ClinicalEvent(patient=patient, recorded_by=recorded_by, **fields)
    event.full_clean()
    with transaction.atomic():
        event.save()
        _refresh_recommendation(patient)
        _changed(patient.pk)
    return event


def clinical_event_resolve(*, event: ClinicalEvent, resolved_date: date) -> ClinicalEvent:
    """Record that an open event has resolved (the rules follow: a resolved rash offers the
    desensitization pathway, §9; a resolved bradycardia is 'asymptomatic', §4.4)."""
    if event.resolved_date is not None:
        raise InputError("This event is already resolved.")
    event.resolved_date = resolved_date
    try:
        event.full_clean()
    except ValidationError as exc:
        raise InputError(" ".join(m for ms in exc.message_dict.values() for m in ms)) from None
    with transaction.atomic():
        event.save(update_fields=["resolved_date"])
        _refresh_recommendation(event.patient)
        _changed(event.patient_id)
    return event


def clinical_event_saved(patient: Patient) -> None:
    """An event changed outside clinical_event_record (the admin): same consequences."""
    _refresh_recommendation(patient)
    _changed(patient.pk)


def _refresh_recommendation(patient: Patient) -> None:
    """Ask the engine again (patients.recommendations listens; it imports this module,
    so this one sends a signal instead of importing it back). Synchronous, in the
    caller's transaction. No listener would mean no recommendation at all: refuse."""
    if not recommendation_due.has_listeners(Patient):
        raise RuntimeError("patients.recommendations is not loaded: no recommendation would be made")
    if (pending := _batched.get()) is not None:
        pending.refresh[patient.pk] = patient
        return
    recommendation_due.send(sender=Patient, patient=patient)


def patient_archive(*, patient: Patient, now: datetime | None = None) -> Patient:
    patient.archived_at = now or timezone.now()
    patient.save(update_fields=["archived_at"])
    _changed(patient.pk)
    return patient


def patient_unarchive(*, patient: Patient) -> Patient:
    patient.archived_at = None
    patient.save(update_fields=["archived_at"])
    _changed(patient.pk)
    return patient
