"""The clinic admin's access trail (issue #12 item 6): who read, exported, changed or
was refused what, when and from where, for the clinics they administer."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.access import ADMIN_ROLES, require_role_somewhere
from accounts.models import AuditEvent, User


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "Any action"), *AuditEvent.Action.choices], required=False)
    user = forms.ModelChoiceField(queryset=User.objects.none(), required=False, empty_label="Anyone")
    day = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                          label="On")

    def __init__(self, *args, clinics: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = User.objects.filter(memberships__clinic__in=clinics).distinct()

    def clean_day(self):
        # The one date rule (protocols.dates): a day up to a year ahead; 9999-12-31 + 1 day
        # overflowed into a 500.
        from protocols.dates import date_problem

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
