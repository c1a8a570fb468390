"""Break-glass access to a patient of another clinic (HIPAA 164.312(a)(2)(ii) emergency
access procedure; reliability.md S16).

A nurse or prescriber whose clinics do not hold a patient names the patient (MRN and
clinic) and types why. The grant is time-boxed (BREAK_GLASS_HOURS, the deadline stored
and queried), opens that one patient's page read-only (accounts.access
get_patient_for_reading_or_404), and is loud: a BREAK_GLASS row on the access trail of
the patient's clinic, a WARNING log line, and an email to that clinic's admins after
commit. Every page read under the grant is a BREAK_GLASS row too (accounts.audit).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import audit, clinic_time
from accounts.models import AuditEvent, Clinic, EmergencyAccess, Role, User

log = logging.getLogger(__name__)

# Who may break the glass: the people who treat patients. Staff and admins cannot.
EMERGENCY_ROLES = (Role.NURSE, Role.PRESCRIBER)


class EmergencyAccessRefused(Exception):
    """No grant was made; the message says why, in words for the form."""


def clinic_clock(clinic: Clinic, when: datetime) -> str:
    """'14:30 BST': a time on the patient's clinic's clock, with its zone."""
    return timezone.localtime(when, clinic_time.clinic_zone(clinic)).strftime("%H:%M %Z")


def emergency_access_grant(*, request: HttpRequest | None, user: User, clinic: Clinic, mrn: str, reason: str,
                           now: datetime | None = None) -> EmergencyAccess:
    """Grant `user` read access to the patient with `mrn` at `clinic` for BREAK_GLASS_HOURS,
    or raise EmergencyAccessRefused. A lookup that finds no patient is on the clinic's
    trail as refused, so probing MRNs is visible to its admins."""
    now = now or timezone.now()
    mrn = mrn.strip()
    if clinic.pk in user.clinic_ids():
        raise EmergencyAccessRefused(f"You are a member of {clinic.name}: open the patient from the patient list.")
    patient = apps.get_model("patients", "Patient").objects.filter(clinic=clinic, mrn=mrn).only("pk", "mrn").first()
    if patient is None:
        audit.record(request, AuditEvent.Action.REFUSED, f"emergency access to MRN {mrn} (no such patient)",
                     clinic_id=clinic.pk, status=200, user=user)
        log.warning("emergency access refused: user %s (id %s) named no patient of clinic %s",
                    user.get_username(), user.pk, clinic.pk)
        raise EmergencyAccessRefused(f"{clinic.name} has no patient with this MRN. Check the MRN and the clinic.")
    current = EmergencyAccess.objects.active(now).filter(user=user, patient_id=patient.pk).first()
    if current is not None:
        raise EmergencyAccessRefused(f"You already have emergency access to this patient until "
                                     f"{clinic_clock(clinic, current.expires_at)}: open it from the list below.")
    grant = EmergencyAccess(user=user, clinic=clinic, patient_id=patient.pk, reason=reason, granted_at=now,
                            expires_at=now + timedelta(hours=settings.BREAK_GLASS_HOURS))
    grant.full_clean()
    with transaction.atomic():
        grant.save()
        audit.record(request, AuditEvent.Action.BREAK_GLASS,
                     f"the record of patient {patient.mrn} until {clinic_clock(clinic, grant.expires_at)}: {reason}",
                     clinic_id=clinic.pk, patient_id=patient.pk, user=user)
        # robust: a mail server that is down must not turn a committed grant into a 500;
        # the trail row above is the record that counts.
        transaction.on_commit(partial(emergency_access_notify, grant_id=grant.pk), robust=True)
    log.warning("emergency access granted: user %s (id %s) to patient %s of clinic %s until %s (grant %s)",
                user.get_username(), user.pk, patient.pk, clinic.pk, grant.expires_at.isoformat(), grant.pk)
    return grant


def emergency_access_end(*, request: HttpRequest | None, user: User, grant_id: int,
                         now: datetime | None = None) -> bool:
    """End one of the user's own active grants now. The only change a grant row allows:
    a conditional UPDATE of `ended_at` (the row stays as it was granted)."""
    now = now or timezone.now()
    grant = EmergencyAccess.objects.active(now).filter(pk=grant_id, user=user).first()
    if grant is None or EmergencyAccess.objects.active(now).filter(pk=grant.pk).update(ended_at=now) != 1:
        return False
    mrn = _mrn(grant.patient_id)
    audit.record(request, AuditEvent.Action.CHANGE, f"emergency access to the record of patient {mrn} (ended early)",
                 clinic_id=grant.clinic_id, patient_id=grant.patient_id, user=user)
    log.info("emergency access ended early: grant %s by user %s (id %s)", grant.pk, user.get_username(), user.pk)
    return True


def _mrn(patient_id: int) -> str:
    patient = apps.get_model("patients", "Patient").objects.filter(pk=patient_id).only("mrn").first()
    return patient.mrn if patient else f"#{patient_id}"


def emergency_access_render(grant: EmergencyAccess) -> tuple[str, str, str]:
    """Subject, text and HTML for the clinic's admins: who, which patient (MRN only,
    reliability.md S13), why, from when until when, and where the trail is."""
    who = grant.user
    context: dict[str, Any] = {
        "grant": grant, "clinic": grant.clinic, "mrn": _mrn(grant.patient_id),
        "who": who.get_full_name() or who.get_username(), "username": who.get_username(),
        "their_clinics": ", ".join(sorted({m.clinic.name for m in who._memberships()})) or "no clinic",
        "granted": clinic_clock(grant.clinic, grant.granted_at), "until": clinic_clock(grant.clinic, grant.expires_at),
        "day": timezone.localtime(grant.granted_at, clinic_time.clinic_zone(grant.clinic)).date(),
        "hours": settings.BREAK_GLASS_HOURS,
        "trail_url": settings.SITE_URL + reverse("audit_trail") + f"?action={AuditEvent.Action.BREAK_GLASS}",
    }
    subject = " ".join(render_to_string("emails/emergency-access-subject.txt", context).split())
    return (subject, render_to_string("emails/emergency-access-body.txt", context),
            render_to_string("emails/emergency-access-body.html", context))


def emergency_access_notify(*, grant_id: int) -> int:
    """Email the admins of the patient's clinic about a grant; the number of recipients
    (0 when there is nobody to tell or the send failed: both logged as errors)."""
    grant = EmergencyAccess.objects.select_related("user", "clinic").get(pk=grant_id)
    to = sorted(set(User.objects.filter(is_active=True, memberships__clinic=grant.clinic_id,
                                        memberships__role=Role.ADMIN).exclude(email="")
                    .values_list("email", flat=True)))
    if not to:
        log.error("emergency access grant %s: clinic %s has no admin with an email address to tell",
                  grant.pk, grant.clinic_id)
        return 0
    subject, text, html = emergency_access_render(grant)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to,
                                     headers={"Message-ID": f"<emergency-access-{grant.pk}@alectinib-monitoring>"},
                                     connection=get_connection(timeout=settings.EMAIL_TIMEOUT))
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception as exc:  # noqa: BLE001 - the grant stands; its trail row is the record
        log.error("emergency access grant %s: the email to clinic %s's admins failed: %s: %s",
                  grant.pk, grant.clinic_id, type(exc).__name__, exc)
        return 0
    return len(to)
