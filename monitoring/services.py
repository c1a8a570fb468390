"""Monitoring workflows: keep due dates current, flag what is overdue, plan and send the
daily digests. Selection (who gets what) is apart from delivery (one email per task),
and every piece of work is a database row claimed with a conditional UPDATE, so that
overlapping beats, retries and several workers cannot double-send (reliability.md A5).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from smtplib import SMTPException, SMTPRecipientsRefused
from time import monotonic as time_monotonic

from celery import current_app
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import ChannelError

from accounts import clinic_time
from accounts.models import Clinic, Role, User
from config.celery import app as celery_app
from monitoring import program, rules
from monitoring.models import (
    ClinicSettings,
    Digest,
    DirtyPatient,
    FollowUp,
    Heartbeat,
    MonitoringItem,
    MonitoringRecord,
    NotificationPreference,
    Requirement,
    RequirementVersion,
)
from patients import desensitization
from patients.models import LabResult, Patient, ProgramStatus, TreatmentCourse
from patients.recommendations import hold_started, recheck_analytes
from protocols.errors import InputError, VersionConflict

log = logging.getLogger(__name__)


def heartbeat_record(*, name: str, now: datetime) -> Heartbeat:
    """Idempotent: running it twice just moves the timestamp."""
    updated = Heartbeat.objects.filter(name=name).update(last_run_at=now, runs=F("runs") + 1)
    if not updated:
        try:
            with transaction.atomic():
                Heartbeat.objects.create(name=name, last_run_at=now, runs=1)
        except IntegrityError:  # another worker created it first
            Heartbeat.objects.filter(name=name).update(last_run_at=now, runs=F("runs") + 1)
    return Heartbeat.objects.get(name=name)


FULL_SWEEP_AT = time(0, 15)  # UTC; the beat schedule's crontab(hour=0, minute=15)
FULL_SWEEP_GRACE = timedelta(minutes=30)


def full_sweep_due(*, now: datetime) -> bool:
    """True when the daily full sweep should have finished by now but has not (beat was
    down, or the worker running it was killed): the tick then runs it, so a lost sweep
    is made up within one tick interval instead of the next night."""
    scheduled = datetime.combine(now.astimezone(UTC).date(), FULL_SWEEP_AT, tzinfo=UTC)
    if now < scheduled + FULL_SWEEP_GRACE:
        scheduled -= timedelta(days=1)
    done = Heartbeat.objects.filter(name="monitoring_full_sweep", last_run_at__gte=scheduled).exists()
    return not done


def full_sweep_claim(*, now: datetime) -> bool:
    """Only one make-up sweep at a time: claim it with a conditional update (a claim older
    than the task's hard time limit is stale)."""
    stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    claimed = Heartbeat.objects.filter(name="monitoring_full_sweep_claim", last_run_at__lt=stale).update(
        last_run_at=now, runs=F("runs") + 1)
    if claimed:
        return True
    try:
        with transaction.atomic():
            Heartbeat.objects.create(name="monitoring_full_sweep_claim", last_run_at=now, runs=1)
    except IntegrityError:
        return False
    return True


def broker_status() -> dict[str, object]:
    """Whether the broker answers, and how many messages wait in the default queue."""
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            try:
                waiting = conn.default_channel.queue_declare(
                    queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True).message_count
            except ChannelError:
                waiting = 0  # Redis has no key for an empty queue
    except Exception as exc:  # noqa: BLE001 - any broker failure is "down"
        return {"broker": "down", "broker_error": type(exc).__name__}
    return {"broker": "ok", "queue_length": waiting}


# The clinic's own date (accounts.clinic_time); kept under this name for callers.
clinic_today = clinic_time.clinic_today


# --- due dates ---------------------------------------------------------------------------------


def _test_days(course: TreatmentCourse, requirements: list[Requirement]) -> dict[str, list[date]]:
    """Clinic dates on which each requirement was satisfied on treatment: every analyte of
    the requirement resulted that day, or a monitoring record says so (two queries). A
    result belongs to the day of the clinic's wall clock, whatever the server's zone."""
    clinic = course.patient.clinic
    tz = clinic_time.clinic_zone(clinic)
    start = course.started_at
    by_day: dict[date, set[str]] = defaultdict(set)
    wanted = {a for r in requirements for a in r.analytes}
    labs = LabResult.objects.filter(patient_id=course.patient_id, is_baseline=False, collected_at__gte=start,
                                    analyte__in=wanted).values_list("analyte", "collected_at")
    for analyte, at in labs:
        by_day[at.astimezone(tz).date()].add(analyte)
    records = MonitoringRecord.objects.filter(patient_id=course.patient_id, performed_on__gte=course.start_date)
    record_days = defaultdict(list)
    for code, day in records.values_list("requirement_code", "performed_on"):
        record_days[code].append(day)
    # A structured check-in (issue #16) is what satisfies the check-in requirement.
    record_days[rules.CHECK_IN] += list(course.check_ins.filter(done_on__gte=course.start_date)
                                        .values_list("done_on", flat=True))
    out: dict[str, list[date]] = {}
    for req in requirements:
        days = list(record_days.get(req.code, []))
        if req.analytes:
            days += rules.satisfied_days(by_day, req.analytes)
        out[req.code] = sorted(days)
    return out


def _schedule_in_force(req: Requirement, day: date, today: date) -> tuple[rules.Schedule, date]:
    """The schedule in force on `day` (the last test, or the course start). Where the
    requirement had no schedule then and has one now (a clinic introduced it later), the
    current one applies from the date it took effect: nobody is overdue retroactively."""
    version = req.version_on(day)
    if version is not None and version.effective_from <= day and version.parsed.phases:
        return version.parsed, day
    current = req.version_on(today)
    if current is not None and current.parsed.phases:
        return current.parsed, max(day, current.effective_from)
    return rules.Schedule(), day


def course_schedule_recompute(*, course: TreatmentCourse, today: date | None = None) -> list[MonitoringItem]:
    """Store the next due date of every requirement for one course (reference §5)."""
    clinic_id = course.patient.clinic_id
    today = today or clinic_today(course.patient.clinic)
    existing = {i.requirement_id: i for i in MonitoringItem.objects.filter(course=course).select_related("requirement")}
    if not course.is_active or course.patient.archived_at is not None:
        # Discontinued, ended or archived: drops out of monitoring (rows kept, no due date).
        MonitoringItem.objects.filter(course=course).update(due_date=None, overdue_from=None, notice="", flagged_at=None)
        return list(existing.values())
    cfg = ClinicSettings.for_clinic(clinic_id)
    requirements = Requirement.objects.for_clinic(clinic_id, course.drug)
    # A requirement the clinic replaced (its own copy of a default, same code) carries
    # the item over: its snooze, flag and follow-ups still apply (issue #12 item 5). One
    # it retired stays, without a due date, so its follow-ups and their history stay too.
    by_code = {r.code: r for r in requirements}
    for item in [i for i in existing.values() if i.requirement_id not in {r.pk for r in requirements}]:
        replacement = by_code.get(item.requirement.code)
        if replacement is not None and replacement.pk not in existing:
            del existing[item.requirement_id]
            item.requirement = replacement
            item.save(update_fields=["requirement"])
            existing[replacement.pk] = item
        else:
            item.due_date, item.overdue_from, item.flagged_at, item.notice = None, None, None, "No longer required"
            item.save(update_fields=["due_date", "overdue_from", "flagged_at", "notice"])
    days = _test_days(course, requirements)
    hold = hold_started(course) if course.recheck_every_days else None
    recheck = set(recheck_analytes(course.recovery_condition)) if hold else set()
    items = []
    for req in requirements:
        last = days[req.code][-1] if days[req.code] else None
        day = last or course.start_date
        schedule, base = _schedule_in_force(req, day, today)
        anchor = last if base == day else base  # a schedule introduced later counts from its start
        due, notice = rules.due_on(schedule, start=course.start_date, last=anchor, today=today)
        if req.code == "cpk" and (pain := program.muscle_pain_since(course, last)) is not None \
                and (due is None or pain < due):
            # Reference §4.5, §5: a CPK when unexplained muscle pain is reported, at any time on treatment.
            due, notice = pain, f"muscle pain reported at the check-in of {pain:%d %b %Y} (reference §4.5, §5)"
        if req.code == "vitals" and (dizzy := program.dizzy_without_rate_since(course, last)) is not None \
                and (due is None or dizzy < due):
            # Reference §4.4: with dizziness or fainting, the heart rate tells a symptomatic bradycardia.
            due, notice = dizzy, f"dizziness or fainting reported at the check-in of {dizzy:%d %b %Y} (reference §4.4)"
        if hold and set(req.analytes) & recheck:
            recheck_on = rules.recheck_due(hold_start=hold.effective_date, last=last, every_days=course.recheck_every_days)
            if due is None or recheck_on < due:
                due, notice = recheck_on, ""
        item = existing.get(req.pk) or MonitoringItem(course=course, clinic_id=clinic_id, requirement=req)
        if item.last_done != last:
            item.snoozed_until = None  # a new test answers the follow-up
        item.last_done, item.due_date, item.notice = last, due, notice
        item.overdue_from = rules.overdue_from(item.due_date, grace_days=cfg.grace_days, snoozed_until=item.snoozed_until)
        if item.overdue_from is None or item.overdue_from > today:
            item.flagged_at = None
        item.clinic_id = clinic_id
        item.save()
        items.append(item)
    return items


def monitoring_record_create(*, patient: Patient, user: User, requirement_code: str, performed_on: date,
                             note: str = "") -> MonitoringRecord:
    """A test done outside the lab panels (e.g. brain imaging): recorded, and the patient's
    due dates follow."""
    record = MonitoringRecord.objects.create(patient=patient, recorded_by=user, requirement_code=requirement_code,
                                             performed_on=performed_on, note=note)
    patient_schedule_recompute(patient_id=patient.pk)
    return record


def requirement_create(*, clinic: Clinic, user: User, code: str, label: str, analytes: list[str],
                       schedule: dict, note: str = "") -> Requirement:
    """A clinic's own requirement (clinic policy), its first schedule version from the
    clinic's today, and every course of the clinic rescheduled. A code already used by a
    shared default or by this clinic is refused."""
    if Requirement.objects.filter(Q(clinic__isnull=True) | Q(clinic=clinic), code=code).exists():
        raise InputError("This code is taken; edit that requirement instead.")
    with transaction.atomic():
        req = Requirement.objects.create(clinic=clinic, code=code, label=label, analytes=analytes,
                                         source="Clinic policy", label_interval=False)
        RequirementVersion.objects.create(requirement=req, schedule=schedule, effective_from=clinic_time.clinic_today(clinic),
                                          created_by=user, note=note)
    schedule_sweep_clinic(clinic_id=clinic.pk)
    return req


def patient_schedule_recompute(*, patient_id: int, today: date | None = None) -> int:
    courses = TreatmentCourse.objects.filter(patient_id=patient_id).select_related("patient__clinic")
    n = 0
    for course in courses:
        course_schedule_recompute(course=course, today=today)
        program.program_recompute(course=course, today=today)
        n += 1
    DirtyPatient.objects.filter(patient_id=patient_id).delete()
    return n


def patient_mark_dirty(*, patient_id: int) -> None:
    DirtyPatient.objects.get_or_create(patient_id=patient_id)


def schedule_sweep(*, full: bool, today: date | None = None, batch: int = 500) -> int:
    """Recompute due dates: the patients marked dirty (incremental), or every course
    that has or had items and every course on treatment (the daily full sweep)."""
    if full:
        ids = set(TreatmentCourse.objects.on_treatment().values_list("patient_id", flat=True))
        ids |= set(MonitoringItem.objects.filter(due_date__isnull=False).values_list("course__patient_id", flat=True))
    else:
        ids = set(DirtyPatient.objects.values_list("patient_id", flat=True)[:batch])
    for patient_id in sorted(ids):
        patient_schedule_recompute(patient_id=patient_id, today=today)
    return len(ids)


def schedule_sweep_clinic(*, clinic_id: int) -> int:
    """After a clinic changes its plan or settings: recompute its patients now."""
    ids = TreatmentCourse.objects.on_treatment().filter(patient__clinic_id=clinic_id).values_list("patient_id", flat=True)
    for patient_id in ids:
        patient_schedule_recompute(patient_id=patient_id)
    return len(ids)


def plans_flag_missed(*, now: datetime) -> int:
    """A desensitization day left unrecorded pauses its plan, like an overdue item
    (each plan on its clinic's date at `now`)."""
    return desensitization.plans_flag_missed(now=now)


FLAG_BATCH = 2000


def overdue_flag(*, now: datetime) -> int:
    """Mark items that have become overdue (compare-and-swap on flagged_at), so the
    moment an item became overdue is recorded once, whichever worker sees it first."""
    flagged = 0
    for clinic in Clinic.objects.all():
        today = clinic_today(clinic, now)
        unflagged = MonitoringItem.objects.filter(clinic=clinic, flagged_at__isnull=True).overdue(today)
        while True:
            # Batches in the order of the partial index on unflagged items (item_unflagged_idx):
            # the scan visits only what is still to flag, however large the flagged backlog.
            batch = list(unflagged.order_by("overdue_from", "pk").values_list("pk", flat=True)[:FLAG_BATCH])
            if not batch:
                break
            flagged += MonitoringItem.objects.filter(pk__in=batch, flagged_at__isnull=True).update(flagged_at=now)
    return flagged


def follow_up_record(*, item: MonitoringItem, user: User, kind: str, note: str, until: date, today: date | None = None) -> FollowUp:
    today = today or clinic_today(item.clinic)
    if kind not in FollowUp.Kind.values:
        raise InputError("Choose 'test ordered' or 'patient contacted'.")
    if not note.strip():
        raise InputError("Say why, e.g. 'ordered at GP surgery, result Friday'.")
    if until < today:
        raise InputError("The snooze date cannot be in the past.")
    if until > today + timedelta(days=FollowUp.MAX_SNOOZE_DAYS):
        raise InputError(f"Snooze at most {FollowUp.MAX_SNOOZE_DAYS} days (until {today + timedelta(days=7):%d %b %Y}).")
    cfg = ClinicSettings.for_clinic(item.clinic_id)
    with transaction.atomic():
        follow = FollowUp.objects.create(item=item, kind=kind, note=note.strip()[:300], snoozed_until=until, recorded_by=user)
        item.snoozed_until = until
        item.overdue_from = rules.overdue_from(item.due_date, grace_days=cfg.grace_days, snoozed_until=until)
        item.flagged_at = None
        item.save(update_fields=["snoozed_until", "overdue_from", "flagged_at", "computed_at"])
    return follow


# --- digests: selection -------------------------------------------------------------------------


# An email stays readable at any clinic size (issue #14): counts per test, the most
# overdue first up to this many, and a link to the worklist for the rest.
DIGEST_LIST_LIMIT = 20


@dataclass(frozen=True)
class DigestContent:
    overdue: int
    due_today: int
    by_test: list[dict]  # {"test", "overdue", "due_today"}, largest first
    most_overdue: list[dict]  # {"mrn", "test", "days"}: the most overdue first, at most DIGEST_LIST_LIMIT
    due_today_list: list[dict]  # {"mrn", "test"}: at most DIGEST_LIST_LIMIT
    supply: int = 0  # courses whose supply runs out within 7 days or whose prescription is not filled (issue #16)
    education: int = 0  # courses started without recorded education, or taught another dose

    @property
    def total(self) -> int:
        return self.overdue + self.due_today + self.supply + self.education


def digest_querysets(*, clinic: Clinic, today: date, escalation_days: int | None = None):
    """(overdue, due today) of a clinic's digest; an escalation lists only what is overdue
    by more than `escalation_days` (days overdue = today - due date)."""
    items = MonitoringItem.objects.filter(clinic=clinic)
    overdue = items.overdue(today)
    if escalation_days is not None:
        return overdue.filter(due_date__lt=today - timedelta(days=escalation_days)), items.none()
    return overdue, items.filter(due_date=today, overdue_from__gt=today)


def digest_content(*, clinic: Clinic, today: date, escalation_days: int | None = None, lists: bool = True) -> DigestContent:
    """What a digest says, computed in the database: counts (per test) with aggregates, and
    the first DIGEST_LIST_LIMIT rows of each list; never every item of the clinic."""
    overdue, due = digest_querysets(clinic=clinic, today=today, escalation_days=escalation_days)
    per_test: dict[str, dict] = {}
    counts = {key: dict(qs.order_by().values_list("requirement_id").annotate(n=Count("pk")))
              for key, qs in (("overdue", overdue), ("due_today", due))}
    # Grouped by the requirement's key, an index-only scan (item_clinic_overdue_idx); the
    # labels of the few requirements after (a clinic's copy and the default share one).
    labels = dict(Requirement.objects.filter(pk__in={pk for c in counts.values() for pk in c})
                  .values_list("pk", "label"))
    for key, by_requirement in counts.items():
        for pk, n in by_requirement.items():
            row = per_test.setdefault(labels[pk], {"test": labels[pk], "overdue": 0, "due_today": 0})
            row[key] += n
    by_test = sorted(per_test.values(), key=lambda r: (-r["overdue"] - r["due_today"], r["test"]))
    most, due_list = [], []
    if lists:
        most = [{"mrn": mrn, "test": label, "days": (today - due_date).days} for mrn, label, due_date in
                overdue.order_by("due_date", "pk").values_list("course__patient__mrn", "requirement__label",
                                                                   "due_date")[:DIGEST_LIST_LIMIT]]
        due_list = [{"mrn": mrn, "test": label} for mrn, label in
                    due.order_by("overdue_from", "pk").values_list("course__patient__mrn",
                                                                          "requirement__label")[:DIGEST_LIST_LIMIT]]
    program_counts = {"supply": 0, "education": 0}
    if escalation_days is None:
        cfg = ClinicSettings.for_clinic(clinic.pk)
        program_counts = {
            "supply": program.supply_flags(ProgramStatus.objects.filter(clinic=clinic), {clinic.pk: today},
                                           {clinic.pk: cfg.fill_check_days}).count(),
            "education": program.education_missing(ProgramStatus.objects.filter(clinic=clinic)).count(),
        }
    return DigestContent(sum(r["overdue"] for r in by_test), sum(r["due_today"] for r in by_test), by_test, most,
                         due_list, **program_counts)


def _wants_digests(user: User) -> bool:
    pref = getattr(user, "notification_preference", None)
    return pref is None or pref.digests_enabled


def digests_plan(*, now: datetime) -> dict[str, int]:
    """For each clinic whose digest time has come today (clinic local time), create one
    Digest row per recipient, claiming the clinic's day with a conditional UPDATE first.
    Returns counts; the rows are sent by digest_send, one task each, after commit."""
    summary = {"clinics": 0, "digests": 0, "escalations": 0, "skipped": 0}
    created: list[int] = []
    # Every clinic's settings in one query (rows created for clinics that have none yet).
    settings_of = {c.clinic_id: c for c in ClinicSettings.objects.all()}
    for clinic in Clinic.objects.all():
        cfg = settings_of.get(clinic.pk) or ClinicSettings.ensure(clinic.pk)
        local = now.astimezone(clinic_time.clinic_zone(clinic))
        today = local.date()
        if local.time() < cfg.digest_time or cfg.last_digest_date == today:
            continue
        with transaction.atomic():
            claimed = ClinicSettings.objects.filter(pk=cfg.pk).filter(
                Q(last_digest_date__isnull=True) | Q(last_digest_date__lt=today)
            ).update(last_digest_date=today)
            if not claimed:
                continue  # another beat or worker took this clinic's day
            summary["clinics"] += 1
            content = digest_content(clinic=clinic, today=today, lists=False)
            count = content.total
            escalate = digest_querysets(clinic=clinic, today=today, escalation_days=cfg.escalation_days)[0].count()
            members = clinic.memberships.select_related("user__notification_preference")
            staff = {m.user for m in members if m.role == Role.STAFF and m.user.is_active}
            seniors = {m.user for m in members if m.role in (Role.PRESCRIBER, Role.ADMIN) and m.user.is_active}
            plan = [(u, Digest.Kind.DIGEST, count) for u in staff if count]
            plan += [(u, Digest.Kind.ESCALATION, escalate) for u in seniors if escalate]
            for user, kind, n in plan:
                if not _wants_digests(user):
                    continue
                status, error = Digest.Status.PENDING, ""
                if not user.email:
                    status, error = Digest.Status.SKIPPED, "No email address on the account."
                digest, made = Digest.objects.get_or_create(
                    recipient=user, clinic=clinic, kind=kind, for_date=today,
                    defaults={"status": status, "last_error": error, "to_address": user.email, "item_count": n},
                )
                if made and status == Digest.Status.PENDING:
                    created.append(digest.pk)
                    summary["escalations" if kind == Digest.Kind.ESCALATION else "digests"] += 1
                elif made:
                    summary["skipped"] += 1
                    log.warning("digest skipped: user %s has no email address (clinic %s)", user.pk, clinic.pk)
    loners = User.objects.filter(is_active=True, memberships__isnull=True, is_superuser=False).count()
    if loners:
        log.warning("%d active user(s) belong to no clinic and receive no digest", loners)
    summary["users_without_clinic"] = loners
    _enqueue_sends(created)
    return summary


# Tasks by their registered names: monitoring.tasks calls this module, so this module
# does not import it back (no import circle); Celery's autodiscovery registers them.
SEND_DIGESTS_TASK = "monitoring.tasks.send_digests"
SEND_BATCH = 50  # digests per task: one SMTP connection each
FULL_SWEEP_TASK = "monitoring.tasks.monitoring_full_sweep"


def tick(*, now: datetime) -> dict[str, object]:
    """Every few minutes (monitoring_tick): recompute patients marked dirty, flag what
    became overdue, plan the digests of clinics whose digest time has come, requeue lost
    sends, and make up a daily sweep that did not run (one claim per day)."""
    result: dict[str, object] = {
        "recomputed": schedule_sweep(full=False),
        "plans_paused": plans_flag_missed(now=now),
        "flagged": overdue_flag(now=now),
        **digests_plan(now=now),
        "requeued": digests_requeue(now=now),
        "full_sweep_made_up": False,
    }
    if full_sweep_due(now=now) and full_sweep_claim(now=now):
        current_app.tasks[FULL_SWEEP_TASK].delay()
        result["full_sweep_made_up"] = True
    heartbeat_record(name="monitoring_tick", now=now)
    return result


def full_sweep(*, now: datetime) -> int:
    """Once a day (monitoring_full_sweep): recompute every patient (dates move with time:
    phase changes, the end of the first month for CPK), then flag."""
    n = schedule_sweep(full=True)
    overdue_flag(now=now)
    heartbeat_record(name="monitoring_full_sweep", now=timezone.now())
    return n


def _enqueue_sends(digest_ids: list[int]) -> None:
    """After commit, one send_digests task per batch of SEND_BATCH digests."""
    def enqueue() -> None:
        for start in range(0, len(digest_ids), SEND_BATCH):
            batch = digest_ids[start:start + SEND_BATCH]
            try:
                current_app.tasks[SEND_DIGESTS_TASK].delay(batch)
            except Exception:  # noqa: BLE001 - broker down: the rows stay pending; digests_requeue sends them later
                log.exception("could not enqueue digests %s; they stay pending", batch)

    transaction.on_commit(enqueue)


def digests_requeue(*, now: datetime, older_than: timedelta | None = None) -> int:
    """Pending rows whose task was lost (broker restarted, worker killed), and rows left
    'sending' past their lease, go back on the queue. Sending is claimed, so a duplicate
    task finds nothing to do."""
    older_than = older_than or timedelta(seconds=2 * settings.DIGEST_LEASE_SECONDS)
    stale = Digest.objects.filter(
        Q(status=Digest.Status.PENDING, next_attempt_at__isnull=True, created_at__lt=now - older_than)
        | Q(status=Digest.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=Digest.Status.SENDING, lease_until__lt=now)
    ).values_list("pk", flat=True)
    ids = list(stale[:500])
    _enqueue_sends(ids)
    return len(ids)


# --- digests: delivery --------------------------------------------------------------------------


class DigestDeferred(Exception):
    """A transient failure: the task retries with backoff."""


def unsubscribe_token(user: User) -> str:
    return signing.dumps({"u": user.pk}, salt="monitoring.unsubscribe")


def user_from_unsubscribe_token(token: str) -> User | None:
    try:
        data = signing.loads(token, salt="monitoring.unsubscribe", max_age=60 * 60 * 24 * 90)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=data.get("u")).first()


PREFERENCES_URL = "\x00preferences-url\x00"  # filled in per recipient after the one rendering


def digest_render(digest: Digest, *, today: date, cache: dict | None = None,
                  unsubscribe: str | None = None) -> tuple[str, str, str]:
    """Subject, text and HTML. No patient name, date of birth or lab value: the MRN, the
    test, days overdue, and links (minimum necessary, reliability.md S13). Rendered once
    per clinic, kind and day (`cache`, shared by a batch); only the recipient's own
    unsubscribe link differs."""
    cache = {} if cache is None else cache
    key = (digest.clinic_id, digest.kind, today)
    if key not in cache:
        cache[key] = _digest_render(digest.clinic, digest.kind, today)
    url = unsubscribe or unsubscribe_url(digest.recipient)
    return tuple(part.replace(PREFERENCES_URL, url) for part in cache[key])  # type: ignore[return-value]


def unsubscribe_url(user: User) -> str:
    return settings.SITE_URL + reverse("unsubscribe", args=[unsubscribe_token(user)])


def _digest_render(clinic: Clinic, kind: str, today: date) -> tuple[str, str, str]:
    cfg = ClinicSettings.for_clinic(clinic.pk)
    escalation = kind == Digest.Kind.ESCALATION
    content = digest_content(clinic=clinic, today=today, escalation_days=cfg.escalation_days if escalation else None)
    context = {
        "clinic": clinic, "today": today, "counts_only": cfg.digest_counts_only, "content": content,
        "more_overdue": content.overdue - len(content.most_overdue),
        "more_due_today": content.due_today - len(content.due_today_list),
        "escalation_days": cfg.escalation_days,
        "worklist_url": settings.SITE_URL + reverse("home"),
        "preferences_url": PREFERENCES_URL,
    }
    name = "escalation" if escalation else "digest"
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
    return (subject, render_to_string(f"emails/{name}-body.txt", context),
            render_to_string(f"emails/{name}-body.html", context))


def _permanent(exc: BaseException) -> bool:
    """A failure that another attempt will not cure: the server refused the recipients or
    the message (5xx), or the message itself is wrong (an address with CR/LF, a template
    error). Network errors, timeouts and 4xx replies are transient."""
    if isinstance(exc, SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, SMTPException):
        return getattr(exc, "smtp_code", 0) >= 500
    return not isinstance(exc, OSError)


def digest_send(*, digest_id: int, now: datetime | None = None) -> str:
    """One digest (digests_send of one): "sent", "failed" or "not claimed"; a transient
    failure raises DigestDeferred."""
    outcome = digests_send(digest_ids=[digest_id], now=now)[digest_id]
    if isinstance(outcome, DigestDeferred):
        raise outcome
    return outcome


def digests_send(*, digest_ids: list[int], now: datetime | None = None) -> dict[int, str | DigestDeferred]:
    """Claim the batch, then render, send and record each digest, over one SMTP connection
    for the batch and rendering each clinic's digest of each kind once (issue #14). Any
    exception ends that digest's attempt, is recorded and counts: a transient failure sets
    the row back to pending with `next_attempt_at` (monitoring_tick requeues it then; the
    outcome is a DigestDeferred); a permanent one, or the last attempt, marks it failed and
    alerts the clinic's admins. A failed send closes the connection; the next digest opens
    a new one. Each digest is marked sent as soon as the server took it: a worker killed
    mid-batch resends none of those."""
    now = now or timezone.now()
    claimed = _digests_claim(digest_ids, now=now)
    outcomes: dict[int, str | DigestDeferred] = {pk: "not claimed" for pk in digest_ids if pk not in claimed}
    cache: dict = {}
    lease = timedelta(seconds=settings.DIGEST_LEASE_SECONDS)
    renew_at = time_monotonic() + lease.total_seconds() / 2
    connection = None
    try:
        for i, digest in enumerate(claimed.values()):
            if time_monotonic() > renew_at:  # a slow server: keep the rest of the batch ours
                _digests_renew([d.pk for d in list(claimed.values())[i:]], lease=lease)
                renew_at = time_monotonic() + lease.total_seconds() / 2
            if connection is None:
                connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
            outcomes[digest.pk] = _digest_send_one(digest, now=now, connection=connection, cache=cache)
            if isinstance(outcomes[digest.pk], DigestDeferred) or outcomes[digest.pk] == "failed":
                _close_quietly(connection)
                connection = None
    finally:
        if connection is not None:
            _close_quietly(connection)
    return outcomes


def _digests_claim(digest_ids: list[int], *, now: datetime) -> dict[int, Digest]:
    """Claim what is pending (or left 'sending' past its lease) among `digest_ids` in one
    statement, skipping rows another worker holds; returns them, in the order asked."""
    claimable = Q(status=Digest.Status.PENDING) | Q(status=Digest.Status.SENDING, lease_until__lt=now)
    with transaction.atomic():
        ids = list(Digest.objects.filter(claimable, pk__in=digest_ids).select_for_update(skip_locked=True)
                   .values_list("pk", flat=True))
        Digest.objects.filter(pk__in=ids).update(
            status=Digest.Status.SENDING, lease_until=now + timedelta(seconds=settings.DIGEST_LEASE_SECONDS),
            attempts=F("attempts") + 1, next_attempt_at=None)
    rows = Digest.objects.select_related("recipient", "clinic").in_bulk(ids)
    return {pk: rows[pk] for pk in digest_ids if pk in rows}


def _digests_renew(digest_ids: list[int], *, lease: timedelta) -> None:
    Digest.objects.filter(pk__in=digest_ids, status=Digest.Status.SENDING).update(lease_until=timezone.now() + lease)


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - a broken connection is dropped either way
        log.debug("closing a broken SMTP connection failed", exc_info=True)


def _digest_send_one(digest: Digest, *, now: datetime, connection, cache: dict) -> str | DigestDeferred:
    try:
        unsubscribe = unsubscribe_url(digest.recipient)
        subject, text, html = digest_render(digest, today=digest.for_date, cache=cache, unsubscribe=unsubscribe)
        # List-Unsubscribe (RFC 2369): the mail client's own "unsubscribe" opens the same page.
        message = EmailMultiAlternatives(
            subject, text, settings.DEFAULT_FROM_EMAIL, [digest.to_address or digest.recipient.email],
            headers={"Message-ID": f"<digest-{digest.pk}@alectinib-monitoring>",
                     "List-Unsubscribe": f"<{unsubscribe}>"}, connection=connection,
        )
        message.attach_alternative(html, "text/html")
        # Opened here, inside the attempt (a refused connection is this digest's failure),
        # and once: send_messages on a closed backend would open and close one per message.
        connection.open()
        message.send()
    except Exception as exc:  # noqa: BLE001 - every failure ends the attempt and is recorded
        error = f"{type(exc).__name__}: {exc}"[:500]
        final = _permanent(exc) or digest.attempts >= Digest.MAX_ATTEMPTS
        retry_at = None if final else now + rules.retry_delay(digest.attempts, random.uniform(-0.2, 0.2))  # noqa: S311
        Digest.objects.filter(pk=digest.pk).update(
            status=Digest.Status.FAILED if final else Digest.Status.PENDING, last_error=error, lease_until=None,
            next_attempt_at=retry_at,
        )
        if final:
            log.error("digest %s failed for good after %s attempt(s): %s", digest.pk, digest.attempts, error)
            return "failed"
        log.warning("digest %s attempt %s failed, next at %s: %s", digest.pk, digest.attempts, retry_at, error)
        deferred = DigestDeferred(error)
        deferred.__cause__ = exc
        return deferred
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.SENT, sent_at=timezone.now(), lease_until=None,
                                               last_error="")
    return "sent"


def digest_retry(*, digest: Digest, user: User) -> Digest:
    """A clinic admin sends a failed digest again (after fixing the address or the mail
    server): a fresh set of attempts, queued now."""
    updated = Digest.objects.filter(pk=digest.pk, status=Digest.Status.FAILED).update(
        status=Digest.Status.PENDING, attempts=0, next_attempt_at=None,
        last_error=f"Retry requested by {user} ({digest.last_error})"[:500])
    if updated != 1:
        raise InputError("Only a failed email can be retried.")
    _enqueue_sends([digest.pk])
    digest.refresh_from_db()
    return digest


def preference_set(*, user: User, digests_enabled: bool) -> NotificationPreference:
    pref, _ = NotificationPreference.objects.get_or_create(user=user)
    pref.digests_enabled = digests_enabled
    pref.save(update_fields=["digests_enabled", "updated_at"])
    return pref


# --- The clinic's monitoring plan ----------------------------------------------------------


def newest_version_pk(requirement: Requirement) -> int:
    """The schedule version a page is read at (0: none yet)."""
    return requirement.versions.order_by("-pk").values_list("pk", flat=True).first() or 0


def requirement_schedule_change(*, clinic: Clinic, requirement: Requirement, label: str, analytes: list[str],
                                schedule: dict, note: str, user: User, based_on: int) -> Requirement:
    """A new schedule version from the clinic's today. Editing a default gives the clinic
    its own copy (the default's versions first). The page's `based_on` version must still
    be the newest: an edit made meanwhile by another admin is a VersionConflict and
    nothing is written (issue #12 item 4)."""
    with transaction.atomic():
        Requirement.objects.select_for_update().filter(pk=requirement.pk).first()  # serialises edits of this row
        own = requirement
        if requirement.clinic_id is None:
            own = Requirement.objects.select_for_update().filter(clinic=clinic, code=requirement.code).first() or requirement
        if newest_version_pk(own) != based_on:
            raise VersionConflict(
                "This schedule was changed by someone else after you opened the page (see its versions). "
                "Nothing was saved: reload the page and edit it again.")
        if own.clinic_id is None:  # a default: the clinic gets its own copy
            own = Requirement.objects.create(
                clinic=clinic, drug=requirement.drug, code=requirement.code, label=requirement.label,
                analytes=requirement.analytes, source=requirement.source + " — edited by the clinic", label_interval=False)
            for v in requirement.versions.order_by("pk"):
                RequirementVersion.objects.create(requirement=own, schedule=v.schedule, effective_from=v.effective_from,
                                                  note=v.note)
        own.label, own.analytes = label, analytes
        own.save(update_fields=["label", "analytes"])
        RequirementVersion.objects.create(requirement=own, schedule=schedule, effective_from=clinic_today(clinic),
                                          note=note, created_by=user)
    return own
