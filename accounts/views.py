"""The clinic admin's access trail (issue #12 item 6): who read, exported, changed or
was refused what, when and from where, for the clinics they administer. And the
break-glass page that puts the loudest rows on it (reliability.md S16)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.access import ADMIN_ROLES, require_role_somewhere
from accounts.api_auth import token_issue, token_revoke
from accounts.emergency import (
    EMERGENCY_ROLES,
    EmergencyAccessRefused,
    clinic_clock,
    emergency_access_end,
    emergency_access_grant,
)
from accounts.forms import ApiKeyForm, EmergencyAccessForm
from accounts.models import ApiToken, AuditEvent, Clinic, EmergencyAccess, User
from protocols.dates import date_problem


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "Any action"), *AuditEvent.Action.choices], required=False)
    user = forms.ModelChoiceField(queryset=User.objects.none(), required=False, empty_label="Anyone")
    day = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                          label="On")

    def __init__(self, *args, clinics: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = User.objects.filter(memberships__clinic__in=clinics).distinct()
        for name, field in self.fields.items():
            field.widget.attrs["class"] = "form-control form-control-sm" if name == "day" else "form-select form-select-sm"

    def clean_day(self):
        # The one date rule (protocols.dates): a day up to a year ahead; 9999-12-31 + 1 day
        # overflowed into a 500.
        day = self.cleaned_data["day"]
        if day is not None and (problem := date_problem(day, today=timezone.localdate(), planned=True)):
            raise forms.ValidationError(problem)
        return day


def audit_trail(request: HttpRequest) -> HttpResponse:
    clinics = require_role_somewhere(request.user, *ADMIN_ROLES)
    events = AuditEvent.objects.for_user(request.user).select_related("user", "clinic")
    form = AuditFilterForm(request.GET or None, clinics=clinics)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["user"]:
            events = events.filter(user=data["user"])
        if data["day"]:
            start = timezone.make_aware(datetime.combine(data["day"], time.min))
            events = events.filter(at__gte=start, at__lt=start + timedelta(days=1))
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "accounts/audit_trail.html", {"form": form, "page": page, "query": query.urlencode()})


def emergency_access(request: HttpRequest) -> HttpResponse:
    """Break-glass: a nurse or prescriber asks to read one patient of another clinic
    (POST, so the MRN never travels in a URL), or ends one of their grants early."""
    require_role_somewhere(request.user, *EMERGENCY_ROLES)
    if request.method == "POST" and "end" in request.POST:
        raw = request.POST["end"]
        if raw.isdigit() and len(raw) < 12 and emergency_access_end(request=request, user=request.user, grant_id=int(raw)):
            messages.success(request, "Emergency access ended.")
        return redirect("emergency_access")
    form = EmergencyAccessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant = emergency_access_grant(request=request, user=request.user, clinic=data["clinic"], mrn=data["mrn"],
                                           reason=data["reason"])
        except EmergencyAccessRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.warning(request, f"Emergency access to this patient of {grant.clinic.name} until "
                                      f"{clinic_clock(grant.clinic, grant.expires_at)}, read-only. Every view is "
                                      "recorded, and the clinic's admins have been told.")
            return redirect("patient_detail", patient_pk=grant.patient_id)
    grants = list(EmergencyAccess.objects.active(timezone.now()).filter(user=request.user).select_related("clinic"))
    mrns = dict(apps.get_model("patients", "Patient").objects.filter(pk__in=[g.patient_id for g in grants])
                .values_list("pk", "mrn"))
    for grant in grants:
        grant.mrn, grant.until_words = mrns.get(grant.patient_id, "?"), clinic_clock(grant.clinic, grant.expires_at)
    return render(request, "accounts/emergency_access.html",
                  {"form": form, "grants": grants, "hours": settings.BREAK_GLASS_HOURS})


def api_keys(request: HttpRequest) -> HttpResponse:
    """REST API keys of the clinics a clinic admin administers: issue (the key is shown
    once, on this response only), see when each was last used, revoke."""
    clinic_ids = require_role_somewhere(request.user, *ADMIN_ROLES)
    form = ApiKeyForm(request.POST or None, clinics=Clinic.objects.filter(pk__in=clinic_ids))
    issued = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        token, key = token_issue(clinic=data["clinic"], user=data["user"], name=data["name"], days=data["days"],
                                 issued_by=request.user)
        issued = {"token": token, "key": key}
        audit.record(request, AuditEvent.Action.CHANGE, f"API key “{token.name}” ({token.prefix}…) issued for "
                     f"{token.user}, until {token.expires_at:%Y-%m-%d}", clinic_id=token.clinic_id, status=200)
        form = ApiKeyForm(clinics=Clinic.objects.filter(pk__in=clinic_ids))
    tokens = ApiToken.objects.for_user(request.user).select_related("clinic", "user", "created_by", "revoked_by")
    page = Paginator(tokens, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/api_keys.html", {"form": form, "page": page, "issued": issued,
                                                      "now": timezone.now()})


@require_POST
def api_key_revoke(request: HttpRequest, token_pk: int) -> HttpResponse:
    require_role_somewhere(request.user, *ADMIN_ROLES)
    token = ApiToken.objects.for_user(request.user).filter(pk=token_pk).first()
    if token is None:
        raise Http404("Not found")
    token_revoke(token=token, user=request.user)
    audit.record(request, AuditEvent.Action.CHANGE, f"API key “{token.name}” ({token.prefix}…) revoked",
                 clinic_id=token.clinic_id, status=302)
    messages.success(request, f"Key “{token.name}” revoked: requests with it are refused from now on.")
    return redirect("access_keys")
