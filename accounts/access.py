"""The single way to scope data by the user's clinics.

Every model whose rows belong to a clinic uses ClinicScopedQuerySet (directly or as a
base) and names the lookup from itself to the clinic in `clinic_lookup`. Views fetch
objects only through `get_for_user_or_404`, so another clinic's object answers 404,
exactly as a missing one would (OWASP IDOR; healthchecks' _get_check_for_user).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest
from django.utils import timezone

from accounts import audit, clinic_time
from accounts.models import Clinic, EmergencyAccess, Role, User

M = TypeVar("M", bound=models.Model)


class ClinicScopedQuerySet(models.QuerySet[M]):
    clinic_lookup = "clinic"

    def for_user(self, user: User | Any) -> ClinicScopedQuerySet[M]:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        return self.filter(**{f"{self.clinic_lookup}__in": user.clinic_ids()})

    def for_clinic(self, clinic_id: int) -> ClinicScopedQuerySet[M]:
        return self.filter(**{self.clinic_lookup: clinic_id})


def get_for_user_or_404(queryset: ClinicScopedQuerySet[M], user: User, *, roles: tuple[str, ...] = (),
                        **lookup: Any) -> M:
    """The one gate of a view that acts on an object: the object if it is in one of the
    user's clinics (otherwise 404, exactly as a missing one), and, when `roles` are given,
    only for a member with one of them in that clinic (otherwise 403: they can see the
    object, so a 404 would hide nothing). The rest of the request then runs on that
    clinic's clock (accounts.clinic_time: one clock per clinic)."""
    try:
        obj = queryset.for_user(user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found") from None
    clinic_time.activate_for(obj, queryset.clinic_lookup)
    if roles:
        require_role(user, _clinic_id(obj, queryset.clinic_lookup), *roles)
    return obj


def _clinic_id(obj: Any, clinic_lookup: str) -> int:
    *path, last = clinic_lookup.split("__")
    for name in path:
        obj = getattr(obj, name)
    return getattr(obj, f"{last}_id")


def get_patient_for_reading_or_404(queryset: ClinicScopedQuerySet[M], request: HttpRequest,
                                   patient_pk: Any) -> tuple[M, EmergencyAccess | None]:
    """get_for_user_or_404 for the one page a break-glass grant opens (reliability.md S16;
    HIPAA 164.312(a)(2)(ii)): the patient's own page. Returns (patient, None) for a
    patient of the user's clinics; otherwise, for a GET only, the one patient an active
    grant of this user names, with the grant. Everything else stays the gate's 404:
    another patient of that clinic, any write, any other page (their views call
    get_for_user_or_404), and the same patient once the grant has ended or expired."""
    try:
        return get_for_user_or_404(queryset, request.user, pk=patient_pk), None
    except Http404:
        if request.method not in ("GET", "HEAD"):
            raise
    try:
        patient_pk = int(patient_pk)
    except (TypeError, ValueError):
        raise Http404("Not found") from None
    grant = (EmergencyAccess.objects.active(timezone.now())
             .filter(user=request.user, user__is_active=True, patient_id=patient_pk).order_by("-expires_at").first())
    if grant is None:
        raise Http404("Not found")
    try:
        obj = queryset.for_clinic(grant.clinic_id).get(pk=patient_pk)
    except queryset.model.DoesNotExist:
        raise Http404("Not found") from None
    clinic_time.activate_for(obj, queryset.clinic_lookup)
    audit.note_emergency(request, grant)
    return obj, grant


def clinic_for_user_or_404(user: User, clinic_id: Any, *roles: str) -> Any:
    """The clinic, if the user belongs to it: another clinic is a 404 (as a missing one
    would be); a member without one of `roles` (when given) is a 403, as on every page."""
    try:
        clinic_id = int(clinic_id)
    except (TypeError, ValueError):
        raise Http404("Not found") from None
    if clinic_id not in user.clinic_ids():
        raise Http404("Not found")
    if roles and not user.has_role(clinic_id, *roles):
        raise PermissionDenied("Your role does not allow this.")
    clinic = Clinic.objects.get(pk=clinic_id)
    clinic_time.activate(clinic)
    return clinic


# Who may do what. Clinic staff read and follow up reminders; they do not enter
# clinical data. Only prescribers change doses (the app never does).
CLINICAL_WRITE_ROLES = (Role.NURSE, Role.PRESCRIBER, Role.ADMIN)
PRESCRIBER_ROLES = (Role.PRESCRIBER,)
ADMIN_ROLES = (Role.ADMIN,)


def clinic_ids_with_role(user: User, *roles: str) -> list[int]:
    return [c for c in user.clinic_ids() if user.has_role(c, *roles)]


def require_role_somewhere(user: User, *roles: str) -> list[int]:
    """The clinics where the user has one of `roles`; 403 when there are none."""
    ids = clinic_ids_with_role(user, *roles)
    if not ids:
        raise PermissionDenied(f"This needs the {' or '.join(roles)} role in one of your clinics.")
    return ids


def require_role(user: User, clinic_id: int, *roles: str) -> None:
    """403 for a member of the clinic without the role (they can see the object, so a
    404 would hide nothing); callers fetch the object through the gate first."""
    if not user.has_role(clinic_id, *roles):
        names = " or ".join(roles)
        raise PermissionDenied(f"This needs the {names} role in this clinic.")
