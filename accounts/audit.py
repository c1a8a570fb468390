"""The access trail: every read of a patient's record, every export of patient data,
every write and every refused request, with who, which clinic, what, when and from where
(HIPAA 164.312(b); reliability.md S8; issue #12 item 6).

Writes are also kept field by field by django-simple-history; `history_ip` on each
history row says where they came from (HistoryIP). This module adds the rest: reads,
exports and refusals, which leave no history row. One row per request, written by
AuditMiddleware after the view ran, so nothing a view forgets to call is missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from accounts.models import AuditEvent

log = logging.getLogger("accounts.audit")

# Pages that list patients: reading one is reading patient data.
LIST_PAGES = {
    "home": "the worklist", "patient_list": "the patient list", "cohort": "the cohort overview",
    "outbox": "the reminder outbox",
    # The REST API (issue #15): what a key read or sent is on the trail like a page.
    "api_patients": "patients (API)", "api_labs": "lab results (API)", "api_lab": "a lab result (API)",
    "api_recommendations": "recommendations (API)", "api_monitoring": "monitoring status (API)",
    "api_lab_intake": "lab results sent (API)", "api_fhir_bundle": "a FHIR Bundle sent (API)",
    # Results that arrive through the pages (issue #15).
    "import_confirm": "imported lab results (saved)", "hl7_reprocess": "a laboratory message (reprocessed)",
}
# Page names in words, for the trail clinic admins read.
PAGE_WORDS = {
    "patient_detail": "the record", "patient_edit": "the details", "patient_history": "the audit trail",
    "patient_archive": "the archive status", "course_start": "a new course", "dose_change": "the dose",
    "lab_panel": "lab results", "lab_result": "a lab result", "event_create": "a clinical event",
    "medication_create": "a medication", "recommendation_accept": "a recommendation (accepted)",
    "recommendation_override": "a recommendation (overridden)", "recommendation_comment": "a recommendation comment",
    "plan_create": "a desensitization plan", "plan_detail": "a desensitization plan",
    "plan_record_day": "a desensitization day", "plan_decide": "a desensitization plan decision",
    "record_test": "a monitoring test", "follow_up": "a follow-up", "api_patient": "the record (API)",
}
SKIP = {"health", "static", "logout"}


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind N trusted proxies (AXES_PROXY_COUNT,
    the same setting the lockout uses) the N-th address from the right of X-Forwarded-For."""
    proxies = getattr(settings, "AXES_IPWARE_PROXY_COUNT", None) or 0
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


@receiver(pre_create_historical_record)
def _history_ip(sender, history_instance, **kwargs) -> None:
    request = getattr(HistoricalRecords.context, "request", None)
    if request is not None and hasattr(history_instance, "history_ip"):
        history_instance.history_ip = client_ip(request)


# Writes to these apps' tables make a POST a change; a POST that wrote nothing (a form
# with errors, a conflict, a refusal shown as a message) is "tried; nothing saved".
WRITE_APPS = {"patients", "monitoring", "protocols", "accounts"}


@receiver(post_save)
@receiver(post_delete)
def _note_write(sender, **kwargs) -> None:
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None or sender._meta.app_label not in WRITE_APPS or sender is AuditEvent \
            or sender.__name__.startswith("Historical"):
        return
    request._audit_wrote = True


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs) -> None:
    if request is None or not request.method:  # not a request (a test client's force_login)
        return
    for clinic_id in user.clinic_ids():
        record(request, AuditEvent.Action.SIGN_IN, "signed in", clinic_id=clinic_id, user=user, status=200)


def note_patient(request: HttpRequest, patient: Any) -> None:
    """A view that loaded a patient says so: the trail names the patient and the clinic."""
    request._audit_patient = patient


def note_emergency(request: HttpRequest, grant: Any) -> None:
    """The patient was reached through a break-glass grant (accounts.access): the read is
    on the trail as BREAK_GLASS, not as an ordinary view (reliability.md S16)."""
    request._audit_emergency = grant


def record(request: HttpRequest | None, action: str, what: str, *, clinic_id: int | None = None,
           patient_id: int | None = None, status: int | None = None, user: Any = None) -> AuditEvent:
    """Insert one row of the trail (jobs pass request=None and the user)."""
    user = user if user is not None else getattr(request, "user", None)
    signed_in = bool(getattr(user, "is_authenticated", False))
    return AuditEvent.objects.create(
        user=user if signed_in else None, username=user.get_username() if signed_in else "",
        clinic_id=clinic_id, patient_id=patient_id, action=action, what=what[:200],
        method=request.method if request else "", path=request.path[:300] if request else "",
        status=status, ip=client_ip(request) if request else None,
    )


def _patient_of(request: HttpRequest, kwargs: dict) -> tuple[int | None, int | None, str]:
    patient = getattr(request, "_audit_patient", None)
    if patient is None and "patient_pk" in kwargs:
        model = apps.get_model("patients", "Patient")
        patient = model.objects.filter(pk=kwargs["patient_pk"]).only("pk", "clinic_id", "mrn").first()
        if patient is None:
            # No such patient: the id asked for is in the words, not in patient_id (it may not
            # even fit the column: schemathesis sent 5203568555424772 and the row failed).
            return None, None, f"patient #{kwargs['patient_pk']} (no such patient)"
    if patient is None:
        return None, None, ""
    return patient.pk, patient.clinic_id, f"of patient {patient.mrn}"


def _describe(request: HttpRequest, response: HttpResponse) -> tuple[str, str, int | None, int | None] | None:
    """(action, what, clinic, patient) for this request, or None when it touches no
    patient data."""
    match = request.resolver_match
    if match is None or match.url_name in SKIP:
        return None
    kwargs = match.kwargs
    attachment = "attachment" in response.get("Content-Disposition", "")
    status = response.status_code
    if match.namespace == "admin":
        if not (match.url_name or "").startswith(("patients_", "monitoring_", "accounts_")):
            return None
        what = f"{match.url_name.replace('_', ' ')}" + (f" #{kwargs['object_id']}" if "object_id" in kwargs else "")
        return _action(request, status, attachment), f"admin: {what}", None, None
    patient_id, clinic_id, whose = _patient_of(request, kwargs)
    if patient_id is None and match.url_name not in LIST_PAGES and not attachment and status not in (403, 404):
        return None
    words = PAGE_WORDS.get(match.url_name) or LIST_PAGES.get(match.url_name) or (match.url_name or "").replace("_", " ")
    clinic_id = clinic_id or _int(request.GET.get("clinic"))
    action = _action(request, status, attachment)
    if (key := getattr(request, "auth", None)) is not None and hasattr(key, "prefix"):
        words = f"{words} with key “{key.name}” ({key.prefix}…)"
    if action == AuditEvent.Action.VIEW and getattr(request, "_audit_emergency", None) is not None:
        action = AuditEvent.Action.BREAK_GLASS
    return action, f"{words} {whose}".strip(), clinic_id, patient_id


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


def _action(request: HttpRequest, status: int, attachment: bool) -> str:
    if status in (401, 403, 404):
        return AuditEvent.Action.REFUSED
    if attachment:
        return AuditEvent.Action.EXPORT
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        return AuditEvent.Action.CHANGE if _saved(request, status) else AuditEvent.Action.TRIED
    return AuditEvent.Action.VIEW


def _saved(request: HttpRequest, status: int) -> bool:
    """A write that stood: something was written, no error message was queued, and the
    page moved on (a redirect, or an htmx fragment); a form shown again with its errors
    was rolled back or never written."""
    if not getattr(request, "_audit_wrote", False):
        return False
    if (request.resolver_match.url_name or "").startswith("api_"):
        return 200 <= status < 300  # an API answers the outcome itself; there is no redirect
    queued = getattr(getattr(request, "_messages", None), "_queued_messages", [])
    if any(m.level >= messages.ERROR for m in queued):
        return False
    return 300 <= status < 400 or request.headers.get("HX-Request") == "true"


class AuditMiddleware:
    """One trail row per request that reads, exports or writes patient data, or is
    refused; refusals are logged with the user too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if not getattr(user, "is_authenticated", False):
            return response  # anonymous requests reach only the sign-in page
        try:
            described = _describe(request, response)
            if described is not None:
                action, what, clinic_id, patient_id = described
                # A list or an export across clinics is on the trail of each of them.
                for clinic in [clinic_id] if clinic_id or patient_id else (user.clinic_ids() or [None]):
                    record(request, action, what, clinic_id=clinic, patient_id=patient_id, status=response.status_code)
                if action == AuditEvent.Action.REFUSED:
                    log.warning("refused %s %s for user %s (id %s) from %s: %s", request.method, request.path,
                                user.get_username(), user.pk, client_ip(request), response.status_code)
                elif action == AuditEvent.Action.BREAK_GLASS:
                    log.warning("emergency access: %s %s read by user %s (id %s) from %s under grant %s",
                                request.method, request.path, user.get_username(), user.pk, client_ip(request),
                                request._audit_emergency.pk)
        except Exception:  # noqa: BLE001 - the log is the trail of last resort
            log.exception("audit row not written: %s %s by %s", request.method, request.path, user.get_username())
        return response
