"""The import pages (issue #15): upload, column mapping, dry run, confirmation, progress,
the summary to download, the clinic's test names, and the HL7 messages for clinic admins.

Every page goes through the clinic gate (accounts.access): another clinic's import is a
404; importing needs a clinical write role (nurse, prescriber, clinic admin); the HL7
message list and reprocessing need the clinic admin role."""

from __future__ import annotations

import csv
from itertools import chain

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.access import (
    ADMIN_ROLES,
    CLINICAL_WRITE_ROLES,
    clinic_for_user_or_404,
    get_for_user_or_404,
    require_role_somewhere,
)
from accounts.exports import Echo, safe_cell
from accounts.models import AuditEvent, Clinic
from patients import csv_import, hl7_feed, imports
from patients.import_forms import AliasForm, MappingForm, UploadForm
from patients.intake import OUTCOME_LABELS, Outcome
from patients.models import AnalyteAlias, LabImport
from protocols.errors import InputError

IMPORT_ROLES = CLINICAL_WRITE_ROLES
OUTCOMES_PER_PAGE = 100


def _import(request: HttpRequest, import_pk: int, roles=IMPORT_ROLES) -> LabImport:
    return get_for_user_or_404(LabImport.objects.select_related("clinic", "created_by"), request.user,
                               roles=roles, pk=import_pk)


def import_list(request: HttpRequest) -> HttpResponse:
    clinic_ids = require_role_somewhere(request.user, *IMPORT_ROLES)
    form = UploadForm(request.POST or None, request.FILES or None, clinics=Clinic.objects.filter(pk__in=clinic_ids))
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        content = upload.read()
        is_json = upload.name.lower().endswith(".json") or content.lstrip()[:1] == b"{"
        imp = imports.lab_import_receive(clinic=form.cleaned_data["clinic"], name=upload.name, content=content,
                                         kind=LabImport.Kind.FHIR if is_json else LabImport.Kind.CSV,
                                         user=request.user)
        return redirect("import_detail", import_pk=imp.pk)
    history = (LabImport.objects.filter(clinic_id__in=clinic_ids).exclude(kind=LabImport.Kind.HL7)
               .select_related("clinic", "created_by").defer("content", "outcomes"))
    page = Paginator(history, 25).get_page(request.GET.get("page"))
    return render(request, "patients/imports/list.html", {"form": form, "page": page})


def import_detail(request: HttpRequest, import_pk: int) -> HttpResponse:
    imp = _import(request, import_pk)
    context: dict = {"imp": imp, "earlier": imports.earlier_copies(imp), "labels": OUTCOME_LABELS}
    if imp.kind == LabImport.Kind.CSV and imp.state in (LabImport.State.RECEIVED, LabImport.State.CHECKED,
                                                         LabImport.State.FAILED):
        try:
            tab = imports.table(imp)
        except InputError as exc:
            context["file_error"] = str(exc)
        else:
            chosen = imp.options.get("mapping") or imports.remembered_mapping(imp, tab)
            context.update(
                mapping_form=MappingForm(header=tab.header, mapping=chosen,
                                         initial={"date_format": imp.options.get("date_format", "iso")}),
                preview=tab.rows[:5], header=tab.header, encoding=tab.encoding,
                delimiter=csv_import.DELIMITERS[tab.delimiter], rows=len(tab.rows))
    if imp.outcomes and imp.state in (LabImport.State.CHECKED, LabImport.State.DONE, LabImport.State.FAILED,
                                      LabImport.State.DRY_RUN):
        context.update(_outcomes(request, imp), show_outcomes=True)
    if imp.kind == LabImport.Kind.HL7:
        context["raw"] = bytes(imp.content).decode("utf-8", errors="replace").replace("\r", "\n")
    context["done"], context["total"] = imports.progress(imp)
    return render(request, "patients/imports/detail.html", context)


def _outcomes(request: HttpRequest, imp: LabImport) -> dict:
    show = request.GET.get("show", "")
    wanted = show if show in {str(o) for o in Outcome} else None
    rows = list(imports.outcome_rows(imp, wanted))
    unknown_tests = sorted({r[5] for r in imp.outcomes if r[1] == Outcome.REFUSE and r[2] == "test" and r[5]})
    return {"show": wanted or "", "outcomes": Paginator(rows, OUTCOMES_PER_PAGE).get_page(request.GET.get("page")),
            "unknown_tests": unknown_tests[:20],
            "alias_form": AliasForm(clinic=imp.clinic, prefix="alias", initial={"name": unknown_tests[0]})
            if unknown_tests and request.user.has_role(imp.clinic_id, *ADMIN_ROLES) else None}


@require_POST
def import_check(request: HttpRequest, import_pk: int) -> HttpResponse:
    imp = _import(request, import_pk)
    if imp.state not in (LabImport.State.RECEIVED, LabImport.State.CHECKED, LabImport.State.FAILED) \
            or imp.kind not in (LabImport.Kind.CSV, LabImport.Kind.FHIR):
        messages.error(request, f"This import is {imp.get_state_display().lower()}: it cannot be checked again.")
        return redirect("import_detail", import_pk=imp.pk)
    if imp.kind == LabImport.Kind.CSV:
        try:
            tab = imports.table(imp)
        except InputError as exc:
            messages.error(request, str(exc))
            return redirect("import_detail", import_pk=imp.pk)
        form = MappingForm(request.POST, header=tab.header, mapping={})
        if not form.is_valid():
            return _mapping_refused(request, imp, tab, form)
        try:
            imports.choose_mapping(imp, form.mapping(), form.cleaned_data["date_format"])
        except imports.MappingError as exc:
            for name, problem in exc.problems.items():
                form.add_error(f"col_{name}", problem)
            return _mapping_refused(request, imp, tab, form)
    if imports.start(imp, "check"):
        messages.info(request, "The file is being checked in the background; this page shows its progress.")
    return redirect("import_detail", import_pk=imp.pk)


def _mapping_refused(request: HttpRequest, imp: LabImport, tab: csv_import.Table, form: MappingForm) -> HttpResponse:
    """The page again with the column choices and their errors (400); nothing was stored."""
    return render(request, "patients/imports/detail.html", {
        "imp": imp, "mapping_form": form, "preview": tab.rows[:5], "header": tab.header, "encoding": tab.encoding,
        "delimiter": csv_import.DELIMITERS[tab.delimiter], "rows": len(tab.rows), "labels": OUTCOME_LABELS,
        "done": 0, "total": 0}, status=400)


@require_POST
def import_confirm(request: HttpRequest, import_pk: int) -> HttpResponse:
    imp = _import(request, import_pk)
    if imp.state != LabImport.State.CHECKED:
        messages.error(request, f"This import is {imp.get_state_display().lower()}: nothing was saved again.")
        return redirect("import_detail", import_pk=imp.pk)
    if imports.start(imp, "commit"):
        messages.info(request, "The results are being saved in the background; this page shows the progress.")
    else:
        imp.refresh_from_db()
        if imp.state == LabImport.State.DONE:
            messages.success(request, f"Saved: {imp.counts.get('create', 0)} results created, "
                                      f"{imp.counts.get('amend', 0)} corrected.")
    return redirect("import_detail", import_pk=imp.pk)


@require_POST
def import_cancel(request: HttpRequest, import_pk: int) -> HttpResponse:
    imp = _import(request, import_pk)
    cancelled = LabImport.objects.filter(pk=imp.pk, state__in=[LabImport.State.RECEIVED, LabImport.State.CHECKED]) \
        .update(state=LabImport.State.CANCELLED)
    if cancelled:
        messages.info(request, "Import cancelled: nothing was saved.")
    else:
        messages.error(request, "This import can no longer be cancelled.")
    return redirect("import_detail", import_pk=imp.pk)


def import_progress(request: HttpRequest, import_pk: int) -> HttpResponse:
    imp = _import(request, import_pk)
    done, total = imports.progress(imp)
    response = render(request, "patients/imports/_progress.html", {"imp": imp, "done": done, "total": total})
    if request.htmx and imp.state not in (LabImport.State.CHECKING, LabImport.State.COMMITTING):
        response["HX-Refresh"] = "true"  # finished: show the whole page with the outcomes
    return response


def import_summary(request: HttpRequest, import_pk: int) -> StreamingHttpResponse:
    imp = _import(request, import_pk)
    writer = csv.writer(Echo())
    header = ["line", "outcome", "field", "reason", "mrn", "test", "value", "collected_at"]
    lines = (writer.writerow([safe_cell(x) for x in row]) for row in imp.outcomes)
    response = StreamingHttpResponse(chain([writer.writerow(header)], lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{imp.pk}-summary.csv"'
    return response


def test_names(request: HttpRequest) -> HttpResponse:
    """The local names a clinic's laboratory uses for the tests. Everyone who imports sees
    them; only a clinic admin teaches or removes one (a wrong name would file every later
    result under the wrong test), and each change is on the access trail and the history."""
    clinic_ids = require_role_somewhere(request.user, *IMPORT_ROLES)
    clinic = clinic_for_user_or_404(request.user, request.POST.get("clinic") or request.GET.get("clinic") or
                                    clinic_ids[0], *IMPORT_ROLES)
    can_teach = request.user.has_role(clinic.pk, *ADMIN_ROLES)
    form = AliasForm(request.POST or None, clinic=clinic, prefix="alias")
    if request.method == "POST":
        if not can_teach:
            raise PermissionDenied("Only a clinic admin teaches the app a test name.")
        if (remove := request.POST.get("remove")) and remove.isascii() and remove.isdigit():
            alias = AnalyteAlias.objects.filter(clinic=clinic, pk=int(remove)).first()
            if alias is not None:
                alias._history_user = request.user
                alias.delete()
                audit.record(request, AuditEvent.Action.CHANGE, f"test name “{alias.name}” forgotten",
                             clinic_id=clinic.pk, status=302)
                messages.success(request, f"{clinic.name} no longer reads “{alias.name}”.")
            return redirect(f"{request.path}?clinic={clinic.pk}")
        if form.is_valid():
            alias = form.save(commit=False)
            alias.clinic, alias.created_by = clinic, request.user
            alias.save()
            audit.record(request, AuditEvent.Action.CHANGE,
                         f"test name “{alias.name}” taught as {alias.get_analyte_display()}", clinic_id=clinic.pk,
                         status=302)
            messages.success(request, f"{clinic.name} now reads “{alias.name}” as {alias.get_analyte_display()}. "
                                      "Check the file again to apply it.")
            back = request.POST.get("import")
            if back and back.isascii() and back.isdigit():
                imp = _import(request, int(back))
                return redirect("import_detail", import_pk=imp.pk)
            return redirect(f"{request.path}?clinic={clinic.pk}")
    aliases = AnalyteAlias.objects.filter(clinic=clinic).select_related("created_by")
    return render(request, "patients/imports/test_names.html", {
        "form": form, "clinic": clinic, "aliases": aliases, "can_teach": can_teach,
        "clinics": Clinic.objects.filter(pk__in=clinic_ids)})


def hl7_messages(request: HttpRequest) -> HttpResponse:
    """The laboratory feed's messages, for clinic admins: what failed and why."""
    clinic_ids = require_role_somewhere(request.user, *ADMIN_ROLES)
    failed_only = request.GET.get("failed") == "1"
    # Saved: the results that link to the message, whatever its later reprocessing found.
    rows = (LabImport.objects.filter(clinic_id__in=clinic_ids, kind=LabImport.Kind.HL7)
            .select_related("clinic").defer("outcomes", "content").annotate(saved=Count("results"))
            .order_by("-created_at", "-id"))
    if failed_only:
        rows = rows.exclude(ack_code="AA")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "patients/imports/hl7_messages.html", {"page": page, "failed_only": failed_only})


@require_POST
def hl7_reprocess(request: HttpRequest, import_pk: int) -> HttpResponse:
    imp = _import(request, import_pk, roles=ADMIN_ROLES)
    if imp.kind != LabImport.Kind.HL7:
        messages.error(request, "Only HL7 messages are reprocessed here.")
        return redirect("import_detail", import_pk=imp.pk)
    ack = hl7_feed.reprocess(imp)
    messages.info(request, f"Message reprocessed: {ack}.")
    return redirect("import_detail", import_pk=imp.pk)
