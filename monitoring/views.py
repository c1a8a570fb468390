from __future__ import annotations

import csv
from datetime import timedelta
from itertools import chain
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import (
    ADMIN_ROLES,
    CLINICAL_WRITE_ROLES,
    clinic_for_user_or_404,
    clinic_ids_with_role,
    get_for_user_or_404,
    require_role_somewhere,
)
from accounts.audit import note_patient
from accounts.clinic_time import clinic_date_of, clinic_today
from accounts.exports import Echo, safe_cell
from accounts.models import Clinic, User
from monitoring import selectors, services
from monitoring.cohort import overview
from monitoring.forms import (
    ClinicSettingsForm,
    FollowUpForm,
    MonitoringRecordForm,
    NewRequirementForm,
    PreferencesForm,
    ScheduleForm,
    WorklistFilterForm,
)
from monitoring.models import (
    ClinicSettings,
    Digest,
    FollowUp,
    Heartbeat,
    MonitoringItem,
    Requirement,
)
from patients.models import Patient
from protocols.errors import InputError, VersionConflict

FOLLOW_UP_ROLES = (*CLINICAL_WRITE_ROLES, "staff")


@login_not_required
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and the admins: database reachable, broker reachable, scheduler
    alive, queue moving.

    Carries no patient data. 200 when the database answers (pages work without the
    broker; actions that enqueue keep their rows and are requeued). `status` is "ok" or
    "degraded"; the heartbeat task goes through the queue every minute, so its age is how
    long work waits (stale after HEARTBEAT_STALE_SECONDS).
    """
    body: dict[str, object] = {"database": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        beat = Heartbeat.objects.filter(name="heartbeat").first()
    except Exception:  # noqa: BLE001 - any database failure is "down" to a load balancer
        return JsonResponse({"database": "down"}, status=503)
    if beat is None:
        body.update(scheduler="never-run", heartbeat_at=None)
    else:
        age = (timezone.now() - beat.last_run_at).total_seconds()
        body.update(
            scheduler="ok" if age <= settings.HEARTBEAT_STALE_SECONDS else "stale",
            heartbeat_at=beat.last_run_at.isoformat(),
            heartbeat_age_seconds=int(age),
        )
    body.update(services.broker_status())
    body["status"] = "ok" if body["broker"] == "ok" and body["scheduler"] == "ok" else "degraded"
    return JsonResponse(body)


WORKLIST_MRN = "worklist_mrn"


def _worklist_filters(request: HttpRequest) -> selectors.Filters:
    """The query string's filters and the MRN search, which is posted and then kept in the
    session: never in a URL or an access log (ASVS 14.2.1), yet kept by the page links,
    the sort, the print view and the CSV export until the nurse clears it."""
    if request.GET.get("clear_mrn"):
        request.session.pop(WORKLIST_MRN, None)
    mrn = request.session.get(WORKLIST_MRN, "") if hasattr(request, "session") else ""
    return WorklistFilterForm(request.GET).filters(user=request.user, mrn=mrn)


def _row_context() -> dict:
    """What every worklist row needs, computed once per page rather than per row (issue
    #14: a {% url %} or a bound form field per row is most of a page's cost). Each URL is
    {"start", "end"} around the object's key: a dict lookup is the template engine's
    first try, where `url.0` on a list fails twice and calls dir() before it indexes."""
    def around_key(name: str) -> dict[str, str]:
        start, end = reverse(name, args=[987654321]).split("987654321")
        return {"start": start, "end": end}

    return {"patient_url": around_key("patient_detail"), "follow_up_url": around_key("follow_up"),
            "program_url": around_key("program")}


def _query_without(request: HttpRequest, names: set[str]) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


def home(request: HttpRequest) -> HttpResponse:
    """The nurse's start page: what needs doing today, filtered, exportable, printable."""
    if request.method == "POST":  # the MRN search: kept in the session, then back to a GET (no resubmit)
        request.session[WORKLIST_MRN] = (request.POST.get("mrn") or "").strip()[:32]
        query = _query_without(request, {f"{n}_page" for n in selectors.SECTIONS})
        return redirect(f"{request.path}?{query}" if query else request.path)
    filters = _worklist_filters(request)
    # Each clinic on its own today at one instant (accounts.clinic_time), as its digest.
    days = selectors.clinic_days(user=request.user, now=timezone.now(), clinic_id=filters.clinic_id)
    today = selectors.worklist_today(days)
    if request.GET.get("export") == "csv":
        return worklist_csv(selectors.worklist_all(user=request.user, days=days, filters=filters), today)
    # Each section a page at a time (?overdue_page=2); an MRN search shows the patient's rows whole.
    pages = {name: request.GET.get(f"{name}_page") for name in selectors.SECTIONS}
    sections = selectors.worklist(user=request.user, days=days, filters=filters, pages=pages)
    clinic_ids = request.user.clinic_ids()
    soon = {d.due_soon_days for d in days.values()}
    context = {
        "today": today, **sections, "filters": filters, **_row_context(),
        # Clinics on different dates (far apart zones) each get their date in the heading.
        "clinic_days": sorted(days.values(), key=lambda d: d.clinic.name) if len({d.today for d in days.values()}) > 1 else [],
        "due_soon_days": soon.pop() if len(soon) == 1 else None,
        "show_clinic": len(clinic_ids) > 1,
        "printing": request.GET.get("print") == "1",
        "clinics": Clinic.objects.filter(pk__in=clinic_ids),
        "requirement_choices": sorted({(r.code, r.label) for c in clinic_ids for r in Requirement.objects.for_clinic(c)}),
        "nurses": User.objects.filter(memberships__clinic_id__in=clinic_ids, memberships__role="nurse").distinct(),
        "query": request.GET.urlencode(),
        "query_without_pages": _query_without(request, {f"{name}_page" for name in selectors.SECTIONS}),
        "query_without_order": _query_without(request, {"order", "overdue_page"}),
        # The alert of a reminder that could not be delivered, for the clinic's admins.
        "failed_digests": Digest.objects.filter(
            clinic_id__in=clinic_ids_with_role(request.user, *ADMIN_ROLES), status=Digest.Status.FAILED,
            for_date__gte=today - timedelta(days=7)).count(),
    }
    return render(request, "monitoring/worklist.html", context)


def worklist_csv(rows, today) -> StreamingHttpResponse:
    """Every row of every section, streamed: read from the database in chunks and written
    as they come, so memory stays flat at any clinic size."""
    writer = csv.writer(Echo())
    header = ["section", "clinic", "mrn", "last_name", "first_name", "item", "date", "detail"]
    lines = (writer.writerow([safe_cell(x) for x in _csv_row(name, row)]) for name, row in rows)
    response = StreamingHttpResponse(chain([writer.writerow(header)], lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="worklist-{today:%Y-%m-%d}.csv"'
    return response


def _csv_row(section: str, row) -> tuple:
    """(section, clinic, mrn, last name, first name, item, date, detail) of one worklist row."""
    if section in ("overdue", "due_soon"):
        p, snoozed = row.item.course.patient, row.item.snoozed_until
        detail = [f"{row.days_late} days overdue"] if section == "overdue" else []
        detail += [f"followed up until {snoozed:%Y-%m-%d}"] if snoozed else []  # as the page's badge says
        return (section, row.item.clinic.name, p.mrn, p.last_name, p.first_name, row.item.requirement.label, row.item.due_date,
                "; ".join(detail))
    if section == "recommendations":
        p = row.course.patient
        return ("recommendation", p.clinic.name, p.mrn, p.last_name, p.first_name, row.headline,
                clinic_date_of(p.clinic, row.created_at), ", ".join(r["id"] for r in row.output["rules"]))
    if section == "withheld":
        c, p = row.course, row.course.patient
        return ("withheld", p.clinic.name, p.mrn, p.last_name, p.first_name, f"resume at {c.resume_dose_mg_bid} mg BID", "",
                "; ".join(r["criterion"].get("text", "") for r in row.recovery))
    if section == "high_grades":
        p = row.patient
        return ("grade_3_or_more", p.clinic.name, p.mrn, p.last_name, p.first_name,
                f"{row.get_analyte_display()} {row.comparator}{row.value.normalize():f} {row.unit}",
                clinic_date_of(p.clinic, row.collected_at), f"grade {row.grade}")
    if section == "supply":
        st, p = row.status, row.status.course.patient
        what = "; ".join(x for x in (f"{'ran' if row.ran_out else 'runs'} out {st.runs_out_on:%Y-%m-%d}"
                                     if row.runs_out_soon else "",
                                     f"no fill {row.unfilled_days} days after the prescription"
                                     if row.unfilled_days is not None else "") if x)
        return ("supply", p.clinic.name, p.mrn, p.last_name, p.first_name, what, st.runs_out_on or st.unfilled_since,
                f"{st.on_hand} capsules on hand" if st.on_hand is not None else "")
    if section == "education":
        c, p = row.course, row.course.patient
        return ("education", p.clinic.name, p.mrn, p.last_name, p.first_name,
                "no education recorded" if row.education == "missing" else
                f"taught {row.taught_dose_mg_bid} mg, now {c.dose_mg_bid} mg", c.start_date, "")
    plan, day, p = row.plan, row.day, row.plan.patient
    return ("plans", p.clinic.name, p.mrn, p.last_name, p.first_name, f"desensitization ({plan.status})", day.date if day else "",
            f"step {day.step} of {plan.n_steps}: {day.morning_mg}/{day.evening_mg} mg" if day else "")


@require_http_methods(["GET", "POST"])
def follow_up(request: HttpRequest, item_pk: int) -> HttpResponse:
    """'Test ordered' or 'patient contacted': snoozes an item (at most 7 days). The form is
    fetched when the nurse asks for it (htmx, into the worklist's row; or as a page of its
    own without JavaScript) rather than repeated on every row of the worklist (issue #14).
    A refused entry comes back with what was typed and the message, where it was typed."""
    item = get_for_user_or_404(MonitoringItem.objects.with_patient(), request.user, roles=FOLLOW_UP_ROLES, pk=item_pk)
    if request.method == "GET":
        return _follow_up_form(request, item)
    form = FollowUpForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.follow_up_record(item=item, user=request.user, kind=form.cleaned_data["kind"],
                                      note=form.cleaned_data["note"], until=form.cleaned_data["until"])
        except InputError as exc:
            error = str(exc)
    else:
        error = " ".join(f"{form.fields[f].label}: {e}" for f, errs in form.errors.items() for e in errs)
    item.refresh_from_db()
    context = {"item": item, "error": error, "values": request.POST if error else None, **_row_context(),
               **_snooze_dates(item)}
    if request.htmx:
        return render(request, "monitoring/_item_row.html",
                      {**context, "row": _item_row(item), "just_saved": not error,
                       "show_clinic": len(request.user.clinic_ids()) > 1})
    if error:  # the page again, with the message and the entry kept
        return _follow_up_page(request, context, status=400)
    messages.success(request, f"{item.requirement.label} for {item.course.patient.mrn}: follow-up recorded, "
                              f"snoozed until {item.snoozed_until:%d %b}.")
    return redirect(_worklist_back(request))


def _follow_up_form(request: HttpRequest, item: MonitoringItem) -> HttpResponse:
    # The follow-up in force, shown above the form: who, when and why it was snoozed.
    last = item.follow_ups.select_related("recorded_by").first() if item.snoozed_until else None
    context = {"item": item, "last": last, **_row_context(), **_snooze_dates(item)}
    if request.htmx and request.GET.get("cancel"):  # the form closed: the row's link again
        return render(request, "monitoring/_follow_up_link.html", context)
    if request.htmx:
        return render(request, "monitoring/_follow_up_form.html", {**context, "inline": True})
    return _follow_up_page(request, context)


def _follow_up_page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    """The follow-up form as a page of its own (without JavaScript)."""
    return render(request, "monitoring/follow_up.html",
                  {**context, "row": _item_row(context["item"]), "back": _worklist_back(request),
                   "max_snooze_days": FollowUp.MAX_SNOOZE_DAYS}, status=status)


def _item_row(item: MonitoringItem) -> selectors.ItemRow:
    return selectors.ItemRow.of(item, clinic_today(item.clinic), ClinicSettings.for_clinic(item.clinic_id).due_soon_days)


def _snooze_dates(item: MonitoringItem) -> dict[str, str]:
    """The snooze dates the form offers, on the item's clinic's today: at most
    FollowUp.MAX_SNOOZE_DAYS ahead, 3 days by default, or the snooze already recorded when
    it is longer (reopening the form does not shorten it unasked)."""
    today = clinic_today(item.clinic)
    latest = today + timedelta(days=FollowUp.MAX_SNOOZE_DAYS)
    default = today + timedelta(days=FollowUp.DEFAULT_SNOOZE_DAYS)
    if item.snoozed_until and item.snoozed_until > default:
        default = min(item.snoozed_until, latest)
    return {"snooze_default": default.isoformat(), "snooze_min": today.isoformat(), "snooze_max": latest.isoformat()}


def _worklist_back(request: HttpRequest) -> str:
    """The worklist page the nurse came from (its filters and page), carried by the form's
    `back` field or, on the way in, the Referer; only ever a worklist URL of this site."""
    candidate = request.POST.get("back") or request.META.get("HTTP_REFERER", "")
    parts = urlsplit(candidate)
    home = reverse("home")
    if parts.path == home and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return home + (f"?{parts.query}" if parts.query else "")
    return home


def outbox(request: HttpRequest) -> HttpResponse:
    """What was sent, when, to whom, and what failed: for clinic admins."""
    clinics = require_role_somewhere(request.user, *ADMIN_ROLES)
    digests = Digest.objects.filter(clinic_id__in=clinics).select_related("recipient", "clinic")[:300]
    failed = Digest.objects.filter(clinic_id__in=clinics, status=Digest.Status.FAILED).count()
    ticks = {h.name: h for h in Heartbeat.objects.filter(name__in=["monitoring_tick", "monitoring_full_sweep"])}
    return render(request, "monitoring/outbox.html", {"digests": digests, "failed": failed, "ticks": ticks})


@require_POST
def digest_retry(request: HttpRequest, digest_pk: int) -> HttpResponse:
    """A clinic admin sends a failed reminder again."""
    digest = get_for_user_or_404(Digest.objects.select_related("recipient"), request.user, roles=ADMIN_ROLES,
                                 pk=digest_pk)
    try:
        services.digest_retry(digest=digest, user=request.user)
    except InputError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The {digest.get_kind_display().lower()} to {digest.recipient} is queued again.")
    return redirect("outbox")


def requirements(request: HttpRequest) -> HttpResponse:
    """The monitoring plan of the user's clinics; clinic admins edit it."""
    clinics = Clinic.objects.filter(pk__in=request.user.clinic_ids())
    rows = []
    for clinic in clinics:
        reqs = Requirement.objects.for_clinic(clinic.pk)
        rows.append({"clinic": clinic, "requirements": reqs, "settings": ClinicSettings.for_clinic(clinic.pk),
                     "can_edit": request.user.has_role(clinic.pk, *ADMIN_ROLES)})
    return render(request, "monitoring/requirements.html", {"rows": rows})


def requirement_edit(request: HttpRequest, clinic_pk: int, requirement_pk: int) -> HttpResponse:
    clinic = clinic_for_user_or_404(request.user, clinic_pk, *ADMIN_ROLES)
    requirement = _requirement_of_clinic_or_404(clinic, requirement_pk)
    if requirement.clinic_id is None and request.method != "POST":  # a POST is checked against its version
        own = Requirement.objects.filter(clinic=clinic, code=requirement.code).first()
        if own is not None:  # the clinic already replaced this default: edit its own
            return redirect("requirement_edit", clinic_pk=clinic.pk, requirement_pk=own.pk)
    form = ScheduleForm(request.POST or None, initial={**ScheduleForm.initial_for(requirement),
                                                       "based_on": services.newest_version_pk(requirement)})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            own = services.requirement_schedule_change(
                clinic=clinic, requirement=requirement, label=d["label"], analytes=d["analytes"],
                schedule=form.schedule(), note=d["note"], user=request.user, based_on=d["based_on"])
        except VersionConflict as exc:
            form.add_error(None, str(exc))
        else:
            services.schedule_sweep_clinic(clinic_id=clinic.pk)
            messages.success(request, f"{own.label}: new schedule in force from today; due dates recomputed.")
            return redirect("requirements")
    return render(request, "monitoring/requirement_form.html",
                  {"form": form, "clinic": clinic, "requirement": requirement, "title": f"Edit {requirement.label}"})


def _requirement_of_clinic_or_404(clinic: Clinic, requirement_pk: int) -> Requirement:
    """A default requirement, or one of this clinic's own."""
    req = Requirement.objects.filter(pk=requirement_pk).prefetch_related("versions").first()
    if req is None or req.clinic_id not in (None, clinic.pk):
        raise Http404("Not found")
    return req


def requirement_create(request: HttpRequest, clinic_pk: int) -> HttpResponse:
    clinic = clinic_for_user_or_404(request.user, clinic_pk, *ADMIN_ROLES)
    form = NewRequirementForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            req = services.requirement_create(clinic=clinic, user=request.user, code=d["code"], label=d["label"],
                                              analytes=d["analytes"], schedule=form.schedule(), note=d["note"])
        except InputError as exc:
            form.add_error("code", str(exc))
        else:
            messages.success(request, f"{req.label} added to the monitoring plan of {clinic}.")
            return redirect("requirements")
    return render(request, "monitoring/requirement_form.html",
                  {"form": form, "clinic": clinic, "title": f"New requirement for {clinic}"})


def clinic_settings(request: HttpRequest, clinic_pk: int) -> HttpResponse:
    clinic = clinic_for_user_or_404(request.user, clinic_pk, *ADMIN_ROLES)
    cfg = ClinicSettings.ensure(clinic.pk)
    form = ClinicSettingsForm(request.POST or None, instance=cfg)
    form.fields["digest_time"].help_text = (f"In the clinic's time zone, {clinic.timezone}: every date and time of "
                                            "this clinic is on its clock.")
    if request.method == "POST" and form.is_valid():
        form.save()
        services.schedule_sweep_clinic(clinic_id=clinic.pk)
        messages.success(request, "Settings saved; due dates recomputed.")
        return redirect("requirements")
    return render(request, "monitoring/requirement_form.html",
                  {"form": form, "clinic": clinic, "title": f"Reminder settings of {clinic}"})


def preferences(request: HttpRequest) -> HttpResponse:
    pref = getattr(request.user, "notification_preference", None)
    # Not `request.POST or None`: an unticked box posts nothing.
    form = PreferencesForm(request.POST if request.method == "POST" else None,
                           initial={"digests_enabled": pref.digests_enabled if pref else True})
    if request.method == "POST" and form.is_valid():
        services.preference_set(user=request.user, digests_enabled=form.cleaned_data["digests_enabled"])
        messages.success(request, "Email preferences saved.")
        return redirect("preferences")
    return render(request, "monitoring/preferences.html", {"form": form, "via_link": False})


@login_not_required
@never_cache
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """From the link in every digest: a signed token, no sign-in needed, shows nothing
    but the switch."""
    user = services.user_from_unsubscribe_token(token)
    if user is None:
        return render(request, "monitoring/preferences.html", {"invalid": True}, status=404)
    pref = getattr(user, "notification_preference", None)
    form = PreferencesForm(request.POST if request.method == "POST" else None,
                           initial={"digests_enabled": pref.digests_enabled if pref else True})
    if request.method == "POST" and form.is_valid():
        services.preference_set(user=user, digests_enabled=form.cleaned_data["digests_enabled"])
        return render(request, "monitoring/preferences.html", {"form": form, "via_link": True, "saved": True,
                                                               "account": user})
    return render(request, "monitoring/preferences.html", {"form": form, "via_link": True, "account": user})


def record_test(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """Record a monitoring test done outside the lab panels (e.g. brain imaging)."""
    patient = get_for_user_or_404(Patient.objects.select_related("clinic"), request.user, roles=CLINICAL_WRITE_ROLES,
                                  pk=patient_pk)
    note_patient(request, patient)  # the access trail names the patient, as on every patient page
    form = MonitoringRecordForm(request.POST or None, requirements=Requirement.objects.for_clinic(patient.clinic_id),
                                patient=patient)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        services.monitoring_record_create(patient=patient, user=request.user, requirement_code=d["requirement_code"],
                                          performed_on=d["performed_on"], note=d["note"])
        messages.success(request, "Test recorded; due dates updated.")
        return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "patient": patient, "title": "Record a monitoring test"})


def cohort(request: HttpRequest) -> HttpResponse:
    """Cohort overview: dose levels now and over time, reductions, reasons, time on
    treatment, monitoring on time; each chart with its numbers beside it."""
    filters = _worklist_filters(request)
    # The clinics' today (the server's only when the user's clinics are on different dates).
    today = selectors.worklist_today(selectors.clinic_days(user=request.user, clinic_id=filters.clinic_id))
    data = overview(user=request.user, today=today, clinic_id=filters.clinic_id)
    chart_data = {
        "now": {"labels": [r["level"] for r in data["now"]], "values": [r["count"] for r in data["now"]]},
        "over_time": {"labels": [r["month"] for r in data["over_time"]], "series": [
            {"label": label, "values": [r[key] for r in data["over_time"]]}
            for key, label in zip(data["level_keys"], data["levels"], strict=True)]},
        "reductions": {"labels": [r["label"] for r in data["reductions"]], "values": [r["count"] for r in data["reductions"]]},
        "reasons": {"labels": [f"{r['toxicity']} ({r['kind']})" for r in data["reasons"][:10]],
                    "values": [r["count"] for r in data["reasons"][:10]]},
    }
    clinics = Clinic.objects.filter(pk__in=request.user.clinic_ids())
    return render(request, "monitoring/cohort.html", {"data": data, "chart_data": chart_data, "clinics": clinics,
                                                      "filters": filters})
