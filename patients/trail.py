"""A patient's audit trail in words a nurse reads (issue #12 item 6; HIPAA 164.312(b),
reliability.md S8): every write to the record and everything hanging off it (field by
field, from django-simple-history, with the IP it came from), every record that is its
own history (comments, plan decisions, follow-ups), and every read, export and refused
request (accounts.AuditEvent). Field names are the fields' labels; values are shown as
the pages show them (choices by their label, people by name, dates as dates)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format

from accounts.models import AuditEvent, User
from patients.models import (
    CheckIn,
    ClinicalEvent,
    ConcomitantMedication,
    DesensitizationPlan,
    Dispensing,
    DoseChangeEvent,
    EducationRecord,
    LabResult,
    Patient,
    PlanDay,
    PlanDecision,
    Prescription,
    Recommendation,
    RecommendationComment,
    TreatmentCourse,
)

# Derived or bookkeeping columns: their changes follow from another change shown.
HIDDEN_FIELDS = {"history_ip", "computed_at", "x_uln", "grading_version", "value", "unit", "uln", "lln", "version"}
# Labels for columns whose names are code, not words.
LABELS = {
    "dose_mg_bid": "Dose (mg twice daily)", "resume_dose_mg_bid": "Resume at (mg twice daily)",
    "from_dose_mg_bid": "From dose (mg twice daily)", "to_dose_mg_bid": "To dose (mg twice daily)",
    "recovery_condition": "Resume when", "recheck_every_days": "Recheck every (days)",
    "mrn": "MRN", "alk_test_date": "ALK test date", "alk_test_method": "ALK test method",
    "alk_test_result": "ALK test result",
}
STATES = {"dose_state", "from_state", "to_state"}


def _history_sources(patient: Patient) -> list[tuple[str, Any]]:
    pid = patient.pk
    return [
        ("Patient", Patient.history.filter(id=pid)),
        ("Course", TreatmentCourse.history.filter(patient_id=pid)),
        ("Dose change", DoseChangeEvent.history.filter(course__patient_id=pid)),
        ("Lab result", LabResult.history.filter(patient_id=pid)),
        ("Clinical event", ClinicalEvent.history.filter(patient_id=pid)),
        ("Medication", ConcomitantMedication.history.filter(course__patient_id=pid)),
        ("Recommendation", Recommendation.history.filter(course__patient_id=pid)),
        ("Desensitization plan", DesensitizationPlan.history.filter(course__patient_id=pid)),
        ("Desensitization day", PlanDay.history.filter(plan__course__patient_id=pid)),
        ("Prescription", Prescription.history.filter(course__patient_id=pid)),
        ("Dispensing", Dispensing.history.filter(course__patient_id=pid)),
    ]


def _json_words(value: Any) -> str:
    if isinstance(value, list):
        parts = [_json_words(v) for v in value]
        return "; ".join(p for p in parts if p) or "none"
    if isinstance(value, dict):
        if value.get("text"):
            return str(value["text"])
        return ", ".join(f"{k.replace('_', ' ')} {_json_words(v)}" for k, v in value.items())
    return str(value)


class Words:
    """Field labels and values in words, with the people looked up once."""

    def __init__(self) -> None:
        self.people: dict[int, str] = {}

    def label(self, model: type[models.Model], name: str) -> str:
        if name in LABELS:
            return LABELS[name]
        try:
            return str(model._meta.get_field(name).verbose_name).capitalize()
        except FieldDoesNotExist:
            return name.replace("_", " ").capitalize()

    def value(self, model: type[models.Model], name: str, value: Any) -> str:
        if value is None or value == "":
            return "—"
        if name in STATES:
            return str(value).replace("_", " ").capitalize()
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return str(value)
        if field.choices:
            return str(dict(field.flatchoices).get(value, value))
        if isinstance(field, models.BooleanField):
            return "yes" if value else "no"
        if field.is_relation and field.related_model is User:
            return self.person(value)
        if isinstance(field, models.JSONField):
            return _json_words(value)
        if isinstance(value, datetime):
            return date_format(timezone.localtime(value), "j M Y H:i")
        if isinstance(value, date):
            return date_format(value, "j M Y")
        return str(value)

    def person(self, pk: Any) -> str:
        if pk not in self.people:
            user = User.objects.filter(pk=pk).first()
            self.people[pk] = str(user) if user else f"user #{pk}"
        return self.people[pk]


def _history_rows(patient: Patient, limit: int, words: Words) -> list[dict]:
    rows: list[dict] = []
    for label, qs in _history_sources(patient):
        model = qs.model.instance_type
        records = list(qs.select_related("history_user").order_by("-history_date")[:limit])
        by_id: dict[int, list] = {}
        for rec in records:
            by_id.setdefault(rec.id, []).append(rec)
        for rec in records:
            versions = by_id[rec.id]
            i = versions.index(rec)
            prev = versions[i + 1] if i + 1 < len(versions) else None
            changes = []
            if prev is not None and rec.history_type == "~":
                changes = [(words.label(model, c.field), words.value(model, c.field, c.old), words.value(model, c.field, c.new))
                           for c in rec.diff_against(prev).changes if c.field not in HIDDEN_FIELDS]
                if not changes:
                    continue  # a save that changed nothing a reader sees (a version stamp)
            rows.append({
                "what": label, "object": str(rec.instance) if rec.history_type != "-" else f"{label} #{rec.id}",
                "type": {"+": "added", "~": "changed", "-": "deleted"}[rec.history_type],
                "who": rec.history_user, "when": rec.history_date, "ip": rec.history_ip, "changes": changes,
            })
    return rows


def _own_history_rows(patient: Patient, limit: int) -> list[dict]:
    """Records written once (comments, plan decisions, follow-ups): each is an entry."""
    comments = RecommendationComment.objects.filter(recommendation__course__patient=patient).select_related(
        "author", "recommendation")[:limit]
    decisions = PlanDecision.objects.filter(plan__course__patient=patient).select_related("decided_by", "plan")[:limit]
    follow_ups = apps.get_model("monitoring", "FollowUp").objects.filter(item__course__patient=patient).select_related(
        "recorded_by", "item__requirement")[:limit]
    education = EducationRecord.objects.filter(course__patient=patient).select_related("recorded_by")[:limit]
    check_ins = CheckIn.objects.filter(course__patient=patient).select_related("recorded_by")[:limit]
    return [
        *({"what": "Education", "object": f"given on {date_format(e.given_on, 'j M Y')}", "type": "added",
           "who": e.recorded_by, "when": e.recorded_at, "ip": None,
           "changes": [("Topics", "", ", ".join(e.topics)), ("Dose (mg twice daily)", "", str(e.dose_mg_bid or "—"))]}
          for e in education),
        *({"what": "Check-in", "object": f"{c.get_mode_display()} on {date_format(c.done_on, 'j M Y')}", "type": "added",
           "who": c.recorded_by, "when": c.recorded_at, "ip": None,
           "changes": [("Missed doses", "", str(c.missed_doses)),
                       ("Symptoms", "", ", ".join(f"{k} grade {g}" for k, g in c.symptoms.items()) or "none"),
                       *(("Finding", "", f["text"]) for f in c.findings)]}
          for c in check_ins),
        *({"what": "Comment", "object": f"on “{c.recommendation.headline}”", "type": "added",
           "who": c.author, "when": c.created_at, "ip": None, "changes": [("Text", "", c.text)]} for c in comments),
        *({"what": "Plan decision", "object": d.get_decision_display(), "type": "added",
           "who": d.decided_by, "when": d.decided_at, "ip": None,
           "changes": [("Reason", "", d.reason)] + ([("Resume on", "", date_format(d.resume_on, "j M Y"))]
                                                    if d.resume_on else [])} for d in decisions),
        *({"what": "Follow-up", "object": f"{f.get_kind_display()} — {f.item.requirement.label}", "type": "added",
           "who": f.recorded_by, "when": f.recorded_at, "ip": None,
           "changes": [("Note", "", f.note), ("Snoozed until", "", date_format(f.snoozed_until, "j M Y"))]}
          for f in follow_ups),
    ]


def _access_rows(patient: Patient, limit: int) -> list[dict]:
    return [{"what": "Access", "object": e.what, "type": e.get_action_display(), "who": e.user or e.username or "anonymous",
             "when": e.at, "ip": e.ip, "changes": []}
            for e in AuditEvent.objects.filter(patient_id=patient.pk).select_related("user")[:limit]]


def patient_trail(patient: Patient, *, limit: int = 300, reads: bool = True) -> list[dict]:
    """The whole trail, newest first."""
    words = Words()
    rows = _history_rows(patient, limit, words) + _own_history_rows(patient, limit)
    if reads:
        rows += _access_rows(patient, limit)
    rows.sort(key=lambda r: r["when"], reverse=True)
    return rows[:limit]
