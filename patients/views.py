"""Patient screens. Each view: parse input, pass the access gate, call a selector or a
service, render (style.md 3.3). Objects come only through get_for_user_or_404."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.access import (
    ADMIN_ROLES,
    CLINICAL_WRITE_ROLES,
    PRESCRIBER_ROLES,
    clinic_ids_with_role,
    get_for_user_or_404,
    get_patient_for_reading_or_404,
    require_role_somewhere,
)
from accounts.audit import note_patient
from accounts.clinic_time import clinic_today, clinic_zone
from accounts.models import Clinic, Role
from patients import desensitization as plans
from patients import recommendations, selectors, services
from patients.forms import (
    AcceptForm,
    ClinicalEventForm,
    CommentForm,
    CourseStartForm,
    DayRecordForm,
    DoseChangeForm,
    EventResolveForm,
    LabAmendForm,
    LabPanelForm,
    LabVoidForm,
    MedicationForm,
    OverrideForm,
    PatientForm,
    PlanChoiceForm,
    PlanDecisionForm,
    PlanStartForm,
    SearchForm,
)
from patients.models import (
    DesensitizationPlan,
    LabResult,
    Patient,
    PlanDay,
    Recommendation,
    TreatmentCourse,
)
from protocols.desensitization import (
    CHECKPOINT_NOTE,
    EVENING_DOSE_FROM,
    REACTION_GUIDANCE,
    TOLERANCE_WARNING,
    describe_capsules,
)
from protocols.dosing import Reason
from protocols.errors import DoseTransitionError, InputError


def _patient(request: HttpRequest, patient_pk: int, *roles: str) -> Patient:
    """The gate of every page about one patient (accounts.access.get_for_user_or_404):
    404 for another clinic's patient, 403 without one of `roles` in the patient's clinic."""
    patient = get_for_user_or_404(Patient.objects.select_related("clinic"), request.user, roles=roles, pk=patient_pk)
    note_patient(request, patient)  # the access trail names the patient and the clinic
    return patient


def patient_list(request: HttpRequest) -> HttpResponse:
    """GET lists; POST searches, so names and MRNs never travel in a URL (ASVS 14.2.1)."""
    clinics = Clinic.objects.filter(pk__in=request.user.clinic_ids())
    form = SearchForm(request.POST or request.GET or None, clinics=clinics)
    clinic_id, include_archived, term = None, False, ""
    if form.is_bound and form.is_valid():
        clinic = form.cleaned_data["clinic"]
        clinic_id = clinic.pk if clinic else None
        include_archived = form.cleaned_data["include_archived"]
        term = form.cleaned_data["q"] if request.method == "POST" else ""
    patients = selectors.patient_list(user=request.user, clinic_id=clinic_id, include_archived=include_archived)
    if term:
        patients = patients.search(term)
        page = Paginator(patients, 100).get_page(1)
    else:
        page = Paginator(patients, 50).get_page(request.GET.get("page"))
    can_add = bool(clinic_ids_with_role(request.user, *CLINICAL_WRITE_ROLES))
    return render(request, "patients/patient_list.html", {"form": form, "page": page, "term": term, "can_add": can_add})


def patient_create(request: HttpRequest) -> HttpResponse:
    clinics = Clinic.objects.filter(pk__in=require_role_somewhere(request.user, *CLINICAL_WRITE_ROLES))
    form = PatientForm(request.POST or None, clinics=clinics)
    if request.method == "POST" and form.is_valid():
        try:
            patient = form.save()
        except IntegrityError:
            form.add_error("mrn", "Another patient in this clinic has this MRN.")
        else:
            messages.success(request, f"Patient {patient.mrn} created.")
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "title": "New patient"})


def patient_edit(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, *CLINICAL_WRITE_ROLES)
    form = PatientForm(request.POST or None, instance=patient, clinics=Clinic.objects.filter(pk=patient.clinic_id))
    if request.method == "POST" and form.is_valid():
        if not form.has_changed():  # an untouched save writes nothing, not an empty history entry
            messages.info(request, "Nothing was changed.")
            return redirect("patient_detail", patient_pk=patient.pk)
        form.save()
        messages.success(request, "Patient details saved.")
        return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "patient": patient, "title": f"Edit {patient}"})


RESULT_ROWS_PER_PAGE = 25


def patient_detail(request: HttpRequest, patient_pk: int) -> HttpResponse:
    # The one page a break-glass grant opens, read-only: the user has no role in the
    # patient's clinic, so every can_* below is False (accounts.access).
    patient, emergency = get_patient_for_reading_or_404(Patient.objects.select_related("clinic"), request, patient_pk)
    note_patient(request, patient)
    context = {"patient": patient, "emergency": emergency, **selectors.patient_page(patient)}
    # Newest panels first, a page at a time: a patient with years of results stays one screen (issue #14).
    context["lab_rows"] = Paginator(context["lab_rows"], RESULT_ROWS_PER_PAGE).get_page(request.GET.get("results_page"))
    user = request.user
    context["can_write"] = user.has_role(patient.clinic_id, *CLINICAL_WRITE_ROLES)
    context["can_prescribe"] = user.has_role(patient.clinic_id, *PRESCRIBER_ROLES)
    context["is_admin"] = user.has_role(patient.clinic_id, *ADMIN_ROLES)
    if context["is_admin"]:
        context["recent_changes"] = selectors.patient_history(patient, limit=8, reads=False)
    return render(request, "patients/patient_detail.html", context)


def patient_history(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, *ADMIN_ROLES)
    rows = selectors.patient_history(patient)
    return render(request, "patients/history.html", {"patient": patient, "rows": rows})


@require_POST
def patient_archive(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, Role.PRESCRIBER, Role.ADMIN)
    if patient.archived_at:
        services.patient_unarchive(patient=patient)
        messages.success(request, f"Patient {patient.mrn} restored from the archive.")
    else:
        services.patient_archive(patient=patient)
        messages.success(request, f"Patient {patient.mrn} archived. Monitoring for them has stopped.")
    return redirect("patient_detail", patient_pk=patient.pk)


def course_start(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, *PRESCRIBER_ROLES)
    form = CourseStartForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.course_start(
                patient=patient, start_date=d["start_date"], dose_mg_bid=d["dose_mg_bid"], regime=d["regime"],
                drug=d["drug"], note=d["note"], ordered_by=request.user, recorded_by=request.user,
            )
        except (InputError, DoseTransitionError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Course started.")
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "patient": patient, "title": "Start a treatment course"})


def _form_errors(form) -> str:
    """A refused form's messages in one line, each after its field's label (the message
    above the page; the form below keeps what was typed)."""
    parts = []
    for name, errors in form.errors.items():
        label = form[name].label if name in form.fields else ""
        parts += [f"{label}: {error}" if label else error for error in errors]
    return " ".join(parts)


def _open_course(patient: Patient) -> TreatmentCourse | None:
    return patient.courses.filter(end_date__isnull=True).first()


def dose_change(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, *PRESCRIBER_ROLES)
    course = _open_course(patient)
    if course is None:
        messages.error(request, "This patient has no open course.")
        return redirect("patient_detail", patient_pk=patient.pk)
    form = DoseChangeForm(request.POST or None, patient=patient, initial={"version": course.version})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.dose_change_record(
                course=course, to=form.target(), effective_date=d["effective_date"], reason=Reason(d["reason"]),
                toxicity=d["toxicity"], toxicity_grade=d["toxicity_grade"], note=d["note"],
                ordered_by=request.user, recorded_by=request.user, read_at_version=d["version"],
            )
        except (InputError, DoseTransitionError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Dose change recorded.")
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(
        request, "patients/form.html",
        {"form": form, "patient": patient, "title": f"Dose change — now {course.dose_label}"},
    )


def lab_panel(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, *CLINICAL_WRITE_ROLES)
    # The form reads and shows the time on the clinic's clock (the gate activated its zone).
    now_local = timezone.localtime(timezone=clinic_zone(patient.clinic)).strftime("%Y-%m-%dT%H:%M")
    form = LabPanelForm(request.POST or None, initial={"collected_at": now_local}, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            rows = services.lab_panel_record(
                patient=patient, collected_at=form.collected(), entries=form.entries(),
                is_baseline=form.cleaned_data["is_baseline"], entered_by=request.user,
            )
        except services.PanelError as exc:
            for field, message in exc.errors.items():
                form.add_error(None if field not in form.fields else field, message)
        else:
            graded = ", ".join(
                f"{r.get_analyte_display()} {r.value.normalize():f} {r.unit}" + (f" (grade {r.grade})" if r.grade is not None else "")
                for r in rows
            )
            messages.success(request, f"Saved: {graded}.")
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, "patients/lab_panel.html", {"form": form, "patient": patient})


def lab_result(request: HttpRequest, patient_pk: int, lab_pk: int) -> HttpResponse:
    """One result with its corrections; nurses and prescribers amend or void it here
    (results are append-only: the original stays on the record, issue #12)."""
    patient = _patient(request, patient_pk, *CLINICAL_WRITE_ROLES)
    lab = get_object_or_404(LabResult.every.select_related("entered_by", "retired_by", "amends"), pk=lab_pk, patient=patient)
    can_correct = lab.in_force
    action = request.POST.get("action") if request.method == "POST" else None
    amend = LabAmendForm(request.POST if action == "amend" else None, lab=lab)
    void = LabVoidForm(request.POST if action == "void" else None)
    if request.method == "POST":
        form = amend if action == "amend" else void if action == "void" else None
        if form is None:
            return HttpResponseBadRequest("Unknown action.")
        if form.is_valid():
            try:
                if action == "amend":
                    new = services.lab_result_amend(lab=lab, user=request.user, **form.cleaned_data)
                else:
                    services.lab_result_void(lab=lab, user=request.user, reason=form.cleaned_data["reason"])
            except services.PanelError as exc:
                for field, message in exc.errors.items():
                    form.add_error(field if field in form.fields else None, message)
            else:
                if action == "amend":
                    messages.success(request, f"Corrected: {new} (grade {new.grade if new.grade is not None else '—'}). "
                                              "The original stays on the record; recommendations and due dates follow.")
                else:
                    messages.success(request, "Result voided. It stays on the record; recommendations and due dates follow.")
                return redirect("patient_detail", patient_pk=patient.pk)
    chain = selectors.correction_chain(lab)
    return render(request, "patients/lab_result.html", {
        "patient": patient, "lab": lab, "chain": chain, "can_correct": can_correct, "amend": amend, "void": void,
    })


def event_create(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, *CLINICAL_WRITE_ROLES)
    form = ClinicalEventForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items()}
        try:
            services.clinical_event_record(patient=patient, recorded_by=request.user, **fields)
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            messages.success(request, "Clinical event recorded.")
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "patient": patient, "title": "Record a clinical event"})


@require_POST
def event_resolve(request: HttpRequest, patient_pk: int, event_pk: int) -> HttpResponse:
    """An open event's resolution date (the patient page and the oral therapy program)."""
    patient = _patient(request, patient_pk, *CLINICAL_WRITE_ROLES)
    event = patient.events.filter(pk=event_pk).first()
    form = EventResolveForm(request.POST, patient=patient)
    back = request.POST.get("next") if request.POST.get("next") == reverse("program", args=[patient.pk]) else None
    if event is None:
        raise Http404("Not found")
    if not form.is_valid():
        messages.error(request, f"Nothing was changed: {_form_errors(form)}")
    else:
        try:
            services.clinical_event_resolve(event=event, resolved_date=form.cleaned_data["resolved_date"])
        except InputError as exc:
            messages.error(request, f"Nothing was changed: {exc}")
        else:
            messages.success(request, f"{event.get_kind_display()} of {event.onset_date:%d %b %Y} resolved on "
                                      f"{event.resolved_date:%d %b %Y}.")
    return redirect(back or reverse("patient_detail", args=[patient.pk]))


def medication_create(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, *CLINICAL_WRITE_ROLES)
    course = _open_course(patient)
    if course is None:
        messages.error(request, "This patient has no open course.")
        return redirect("patient_detail", patient_pk=patient.pk)
    form = MedicationForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        med = form.save(commit=False)
        med.course = course
        med.save()
        messages.success(request, f"{med.name} added to the concomitant medications.")
        return redirect("patient_detail", patient_pk=patient.pk)
    return render(
        request, "patients/form.html",
        {"form": form, "patient": patient, "title": "Add a heart-rate-lowering medicine (reference §4.4)"},
    )


# --- Recommendations: prescribers decide, nurses comment ------------------------------------


def _on_recommendation(request: HttpRequest, patient_pk: int, recommendation_pk: int, *, make_form, roles,
                       act) -> HttpResponse:
    """The shared POST flow of accept / override / comment: gate, role, form, service,
    message, back to the patient page. `act(rec, data)` returns the success message."""
    rec = get_for_user_or_404(Recommendation.objects.select_related("course__patient__clinic"), request.user,
                              roles=roles, pk=recommendation_pk, course__patient_id=patient_pk)
    form = make_form(request.POST, rec)
    if form.is_valid():
        try:
            messages.success(request, act(rec, form.cleaned_data))
        except (InputError, DoseTransitionError) as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("patient_detail", patient_pk=patient_pk)


@require_POST
def recommendation_accept(request: HttpRequest, patient_pk: int, recommendation_pk: int) -> HttpResponse:
    def act(rec, data):
        event = recommendations.recommendation_accept(recommendation=rec, user=request.user, option=data["option"], effective_date=data["effective_date"],
                       recheck_every_days=data.get("recheck_every_days"), read_at_version=data["version"])
        if event is None:
            return "Reviewed: no dose change. The review is in the history."
        return f"Accepted: {event.from_label} → {event.to_label} from {event.effective_date:%d %b %Y}."

    return _on_recommendation(request, patient_pk, recommendation_pk, make_form=lambda data, rec: AcceptForm(data, recommendation=rec),
                              roles=PRESCRIBER_ROLES, act=act)


@require_POST
def recommendation_override(request: HttpRequest, patient_pk: int, recommendation_pk: int) -> HttpResponse:
    def act(rec, data):
        recommendations.recommendation_override(recommendation=rec, user=request.user, reason=data["reason"], read_at_version=data["version"])
        return "Recommendation overridden; the dose is unchanged. Your reason is in the history."

    return _on_recommendation(request, patient_pk, recommendation_pk, make_form=lambda data, rec: OverrideForm(data),
                              roles=PRESCRIBER_ROLES, act=act)


@require_POST
def recommendation_comment(request: HttpRequest, patient_pk: int, recommendation_pk: int) -> HttpResponse:
    def act(rec, data):
        recommendations.recommendation_comment(recommendation=rec, user=request.user, text=data["text"])
        return "Comment added."

    return _on_recommendation(request, patient_pk, recommendation_pk, make_form=lambda data, rec: CommentForm(data),
                              roles=CLINICAL_WRITE_ROLES, act=act)


# --- Desensitization plans ------------------------------------------------------------------


def _plan(request: HttpRequest, patient_pk: int, plan_pk: int, *roles: str) -> DesensitizationPlan:
    return get_for_user_or_404(DesensitizationPlan.objects.select_related("course__patient__clinic", "protocol",
                                                                          "approved_by", "rash_event"),
                               request.user, roles=roles, pk=plan_pk, course__patient_id=patient_pk)


def plan_create(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """Choose a protocol, the resolved rash and a start date; preview the calendar with
    capsules; a prescriber approves and starts it."""

    patient = _patient(request, patient_pk, *PRESCRIBER_ROLES)
    posted = request.method == "POST"
    data = request.POST if posted else request.GET
    latest = patient.events.filter(kind="rash", resolved_date__isnull=False).order_by("-onset_date").first()
    bound = posted or any(name in data for name in PlanChoiceForm.base_fields)
    if bound and "rash_event" not in data and latest is not None:  # a link without a rash: the latest resolved one
        data = data.copy()
        data["rash_event"] = str(latest.pk)
    # First visit: nothing chosen yet but the latest resolved rash and today.
    choice = PlanChoiceForm(data if bound else None, user=request.user, patient=patient,
                            initial={"rash_event": latest, "start_date": clinic_today(patient.clinic)})
    chosen = choice.cleaned_data if bound and choice.is_valid() else None
    if posted and chosen is None:  # never start a plan on another date, protocol or rash than the ones previewed
        messages.error(request, f"The plan was not started. {_form_errors(choice)}")
        return redirect("plan_create", patient_pk=patient.pk)
    preview = approve = None
    if chosen is not None:
        preview = plans.plan_preview(patient=patient, protocol=chosen["protocol"], start=chosen["start_date"],
                                     rash_event=chosen["rash_event"])
        carry = {"protocol": chosen["protocol"].pk, "rash_event": chosen["rash_event"].pk if chosen["rash_event"] else "",
                 "start_date": chosen["start_date"].isoformat()}
        approve = PlanStartForm(request.POST if posted else None, patient=patient, carry=carry,
                                needs_override=bool(preview.needs_override))
    if posted and approve.is_valid():
        d = approve.cleaned_data
        try:
            plan = plans.plan_start(
                patient=patient, protocol=chosen["protocol"], rash_event=chosen["rash_event"], start=chosen["start_date"],
                user=request.user, override_reason=d.get("override_reason", ""), corticosteroid=d["corticosteroid"],
                prior_checkpoint_inhibitor=d["prior_checkpoint_inhibitor"],
                checkpoint_inhibitor_last_dose=d["checkpoint_inhibitor_last_dose"])
        except (InputError, DoseTransitionError, ValueError) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Plan approved and started; the dose state is now desensitization.")
            return redirect("plan_detail", patient_pk=patient.pk, plan_pk=plan.pk)
    return render(request, "patients/plan_create.html", {
        "patient": patient, "choice": choice, "preview": preview, "approve": approve,
        "scars": plans.scar_events(patient),
    })


def plan_detail(request: HttpRequest, patient_pk: int, plan_pk: int) -> HttpResponse:
    return _plan_page(request, _plan(request, patient_pk, plan_pk))


def _record_form(plan: DesensitizationPlan, day: PlanDay | None, data=None) -> DayRecordForm | None:
    if day is None:
        return None
    return DayRecordForm(data, day=day, evening_open=plans.evening_open(day, zone=clinic_zone(plan.patient.clinic)),
                         action=reverse("plan_record_day", args=[plan.course.patient_id, plan.pk, day.pk]))


def _decision_form(plan: DesensitizationPlan, data=None) -> PlanDecisionForm:
    return PlanDecisionForm(data, patient=plan.patient, initial={"version": plan.version},
                            action=reverse("plan_decide", args=[plan.course.patient_id, plan.pk]))


def _plan_page(request: HttpRequest, plan: DesensitizationPlan, *, record_form: DayRecordForm | None = None,
               decision_form: PlanDecisionForm | None = None) -> HttpResponse:
    """The plan's page; a refused record or decision comes back here with what was typed."""
    days = plans.plan_days(plan)
    for d in days:
        d.morning_caps = describe_capsules(d.morning_mg, plan.strengths)
        d.evening_caps = describe_capsules(d.evening_mg, plan.strengths)
    next_day = next((d for d in days if not d.recorded), None)
    return render(request, "patients/plan_detail.html", {
        "patient": plan.patient, "plan": plan, "days": days, "next_day": next_day,
        "today": clinic_today(plan.patient.clinic),
        "can_record": request.user.has_role(plan.patient.clinic_id, *CLINICAL_WRITE_ROLES),
        "can_decide": request.user.has_role(plan.patient.clinic_id, *PRESCRIBER_ROLES),
        "decisions": plan.decisions.select_related("decided_by"),
        "record_form": record_form or _record_form(plan, next_day),
        "decision_form": decision_form or _decision_form(plan),
        # After a reaction the prescriber decides on the reaction (§9.3 req. 5), not on a missed dose (req. 3).
        "pause_guidance": REACTION_GUIDANCE if plans.pausing_reaction(plan) else TOLERANCE_WARNING,
        "evening_open": bool(next_day) and plans.evening_open(next_day, zone=clinic_zone(plan.patient.clinic)),
        "evening_from": EVENING_DOSE_FROM, "printing": request.GET.get("print") == "1",
        "checkpoint_note": CHECKPOINT_NOTE,
        "cancelled": plan.days.filter(cancelled=True).count(),
    })


@require_POST
def plan_record_day(request: HttpRequest, patient_pk: int, plan_pk: int, day_pk: int) -> HttpResponse:
    plan = _plan(request, patient_pk, plan_pk, *CLINICAL_WRITE_ROLES)
    day = get_object_or_404(PlanDay, pk=day_pk, plan=plan)
    form = _record_form(plan, day, request.POST)
    if not form.is_valid():
        messages.error(request, f"Day {day.number} was not recorded. {_form_errors(form)}")
        return _plan_page(request, plan, record_form=form)
    d = form.cleaned_data
    try:
        plan = plans.plan_record_day(
            plan=plan, day=day, user=request.user, morning_taken=d["morning_taken"], evening_taken=d["evening_taken"],
            reaction=d["reaction"], reaction_grade=d["reaction_grade"], note=d["note"])
    except InputError as exc:
        messages.error(request, str(exc))
        return _plan_page(request, plan, record_form=form)
    if plan.status == "paused":
        messages.warning(request, f"Plan paused. {plan.pause_reason}")
    elif plan.status == "completed":
        messages.success(request, f"Plan completed: now {plan.final_dose_mg_bid} mg twice daily.")
    else:
        messages.success(request, f"Day {day.number} recorded.")
    return redirect("plan_detail", patient_pk=patient_pk, plan_pk=plan.pk)


@require_POST
def plan_decide(request: HttpRequest, patient_pk: int, plan_pk: int) -> HttpResponse:
    plan = _plan(request, patient_pk, plan_pk, *PRESCRIBER_ROLES)
    form = _decision_form(plan, request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            plans.plan_decide(plan=plan, decision=d["decision"], reason=d["reason"], user=request.user,
                              resume_on=d["resume_on"], read_at_version=d["version"])
        except (InputError, ValueError, DoseTransitionError) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Decision recorded.")
            return redirect("plan_detail", patient_pk=patient_pk, plan_pk=plan.pk)
    else:
        messages.error(request, f"The decision was not recorded. {_form_errors(form)}")
    return _plan_page(request, plan, decision_form=form)
