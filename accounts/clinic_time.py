"""One clock per clinic.

Every "today" and every day boundary in the app is the clinic's: whether an item is
overdue, the day a lab result counts for, a desensitization day, "not in the future".
A clinic in Auckland is up to a day ahead of the server (settings.TIME_ZONE), one in
Honolulu up to a day behind; read on the server's clock, the worklist would disagree
with the clinic's digest for part of every day, and a lab collected at 23:30 would count
on the wrong day. Times are stored in UTC and converted only at the edges (style.md 3.4):

- `clinic_zone`, `clinic_today`, `clinic_date_of`, `clinic_day_start`: explicit
  conversions for services and tasks, which have no request.
- `on_clinic_days`: one filter over several clinics, each compared with its own today,
  for a user whose clinics are in different zones (still one query).
- `activate_for` (called by the access gates, accounts.access) and
  `ClinicTimeZoneMiddleware`: while a request is about one clinic's object, Django's
  current time zone is that clinic's, so forms, model `clean()`, datetime inputs and
  templates read the clinic's clock without being told. Templates name the zone next to
  every time (the "T" date format, e.g. "23:30 NZST").
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Clinic, User


def clinic_zone(clinic: Clinic | str) -> zoneinfo.ZoneInfo:
    """The clinic's zone (a Clinic, or its IANA name)."""
    return zoneinfo.ZoneInfo(clinic if isinstance(clinic, str) else clinic.timezone)


def clinic_today(clinic: Clinic | str, now: datetime | None = None) -> date:
    """The date on the clinic's wall clock at `now` (default: this instant)."""
    return (now or timezone.now()).astimezone(clinic_zone(clinic)).date()


def clinic_date_of(clinic: Clinic | str, when: datetime) -> date:
    """The clinic day an instant belongs to (a lab at 23:30 local counts on that day)."""
    return when.astimezone(clinic_zone(clinic)).date()


def clinic_day_start(clinic: Clinic | str, day: date) -> datetime:
    """The first instant of `day` in the clinic. fold=0 makes a midnight that a DST
    change skips or repeats resolve to the day's first instant."""
    return datetime.combine(day, time.min, tzinfo=clinic_zone(clinic))


def on_clinic_days(todays: Mapping[int, date], build: Callable[[int, date], Q], *, clinic_field: str = "clinic_id") -> Q:
    """OR over the clinics of (rows of that clinic AND build(clinic_id, its today)): the
    per-clinic comparison happens in the database. No clinic matches nothing."""
    combined = Q(pk__in=[])
    for clinic_id, today in todays.items():
        combined |= Q(**{clinic_field: clinic_id}) & build(clinic_id, today)
    return combined


def user_clinics(user: User) -> list[Clinic]:
    """The user's clinics, from the per-request membership cache (no extra query)."""
    seen: dict[int, Clinic] = {}
    for m in user._memberships():  # noqa: SLF001 - the cache accounts.models keeps per request
        seen.setdefault(m.clinic_id, m.clinic)
    return sorted(seen.values(), key=lambda c: c.name)


def activate(clinic: Clinic | str) -> None:
    """The clinic's zone becomes Django's current one until the request ends
    (ClinicTimeZoneMiddleware deactivates it)."""
    timezone.activate(clinic_zone(clinic))


def activate_for(obj: Any, clinic_lookup: str) -> None:
    """Activate the zone of the clinic an object belongs to, following `clinic_lookup`
    (the ClinicScopedQuerySet path, e.g. "patient__clinic"); select_related it to keep
    this free of queries."""
    target = obj
    for name in clinic_lookup.split("__"):
        target = getattr(target, name, None)
        if target is None:
            return
    if isinstance(target, Clinic):
        activate(target)


class ClinicTimeZoneMiddleware:
    """A user whose clinics share one zone sees every page on that clock; a user in
    clinics of several zones sees lists per clinic (each row converted on its own) and,
    once the access gate has fetched one clinic's object, that clinic's clock. The zone
    is reset after every request so it never leaks into the next one on this thread."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            zones = {c.timezone for c in user_clinics(user)}
            if len(zones) == 1:
                activate(zones.pop())
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
