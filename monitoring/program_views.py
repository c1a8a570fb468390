"""Pages of the oral therapy program (issue #16): one overview per patient, the education
checklist, the printable handout, prescriptions and dispensings, and the check-in.

Every page goes through the patient gate (get_for_user_or_404: another clinic's patient is
a 404, a missing role a 403); reading needs a role in the patient's clinic, writing a
clinical role."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import CLINICAL_WRITE_ROLES, get_for_user_or_404
from accounts.audit import note_patient
from accounts.clinic_time import clinic_today
from accounts.models import Role
from monitoring import program, rules
from monitoring.models import ClinicSettings
from monitoring.program_forms import CheckInForm, DispensingForm, EducationForm, PrescriptionForm, VoidForm
from patients.models import ClinicalEvent, Dispensing, Patient, Prescription, TreatmentCourse
from protocols import oral_program
from protocols.errors import InputError

READ_ROLES = (*CLINICAL_WRITE_ROLES, Role.STAFF)


def _patient(request: HttpRequest, patient_pk: int, roles: tuple[str, ...]) -> Patient:
    patient = get_for_user_or_404(Patient.objects.select_related("clinic"), request.user, roles=roles, pk=patient_pk)
    note_patient(request, patient)
    return patient


def _course(patient: Patient) -> TreatmentCourse | None:
    return patient.courses.filter(end_date__isnull=True).select_related("patient__clinic").first()


def _no_course(request: HttpRequest, patient: Patient) -> HttpResponse:
    messages.error(request, "This patient has no open course: start one before the oral therapy program.")
    return redirect("patient_detail", patient_pk=patient.pk)


def overview(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, READ_ROLES)
    course = _course(patient)
    context: dict = {"patient": patient, "course": course,
                     "can_write": request.user.has_role(patient.clinic_id, *CLINICAL_WRITE_ROLES)}
    if course is not None:
        today = clinic_today(patient.clinic)
        facts = program.page_facts(course, today)
        supply, unfilled = facts.supply, facts.unfilled_since
        fill_check_days = ClinicSettings.for_clinic(patient.clinic_id).fill_check_days
        context.update(
            today=today, education=program.education_state(course), supply=supply,
            runs_out_soon=supply.runs_out_within(today), unfilled=unfilled, ran_out=supply.ran_out(today),
            days_without=(today - supply.runs_out_on).days + 1 if supply.ran_out(today) and supply.runs_out_on else 0,
            unfilled_late=bool(unfilled and (today - unfilled).days >= fill_check_days),
            fill_check_days=fill_check_days, unfilled_days=(today - unfilled).days if unfilled else 0,
            prescriptions=course.prescriptions.select_related("recorded_by")[:20],
            dispensings=course.dispensings.select_related("recorded_by")[:20],
            check_in_item=program.check_in_item(course), check_ins=_check_in_rows(course),
            adherence=facts.adherence, chart=_chart(facts.adherence["points"]),
            can_prescribe=request.user.has_role(patient.clinic_id, Role.PRESCRIBER),
        )
    return render(request, "monitoring/program.html", context)


def _check_in_rows(course: TreatmentCourse) -> list[tuple]:
    """The newest check-ins, each with its symptoms by term and its findings; a rash
    finding carries its event (open: waits for its resolution; resolved after a hold: the
    desensitization pathway is offered, reference §9)."""
    check_ins = list(course.check_ins.select_related("recorded_by")[:20])
    ids = [pk for c in check_ins for f in c.findings if f.get("route") == "rash" for pk in f.get("events", [])]
    events = ClinicalEvent.objects.in_bulk(ids) if ids else {}
    rows = []
    for c in check_ins:
        terms = [(oral_program.SYMPTOM[k].term if k in oral_program.SYMPTOM else k, g) for k, g in c.symptoms.items()]
        findings = [{**f, "rash_events": [events[pk] for pk in f.get("events", []) if pk in events]}
                    if f.get("route") == "rash" else f for f in c.findings]
        rows.append((c, terms, findings))
    return rows


def _chart(points: list[dict]) -> list[dict]:
    """Bars of the share of doses missed at each check-in (SVG coordinates, 0–100 %)."""
    bars = []
    for i, p in enumerate(points[-12:]):
        pct = p["percent"] or 0
        height = max(1.0, 60 * pct / 100)
        bars.append({"x": 34 + i * 22, "y": 70 - height, "height": height, "day": p["day"], "missed": p["missed"],
                     "percent": p["percent"]})
    return bars


def education(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, CLINICAL_WRITE_ROLES)
    course = _course(patient)
    if course is None:
        return _no_course(request, patient)
    topics = program.education_topics(course)
    form = EducationForm(request.POST or None, topics=topics, patient=patient,
                         initial={"given_on": clinic_today(patient.clinic)})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            program.education_record(course=course, user=request.user, given_on=d["given_on"], topics=d["topics"],
                                     with_whom=d["with_whom"], notes=d["notes"])
        except InputError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Education recorded. Print the handout for the patient.")
            return redirect("program", patient_pk=patient.pk)
    return render(request, "monitoring/program_education.html",
                  {"patient": patient, "course": course, "form": form, "topics": topics,
                   "no_source": oral_program.NO_SOURCE})


def handout(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """The plain-language sheet for the patient, at their current dose, with the clinic's
    phone number (printable)."""
    patient = _patient(request, patient_pk, READ_ROLES)
    course = _course(patient)
    if course is None:
        return _no_course(request, patient)
    return render(request, "monitoring/handout.html", {
        "patient": patient, "course": course, "topics": program.education_topics(course),
        "dose": program.current_dose(course), "today": clinic_today(patient.clinic),
        "step": program.desensitization_step(course),
        "phone": ClinicSettings.for_clinic(patient.clinic_id).patient_phone,
        "no_source": oral_program.NO_SOURCE})


def _supply_form(request: HttpRequest, patient_pk: int, form_class, record, title: str, done: str) -> HttpResponse:
    patient = _patient(request, patient_pk, CLINICAL_WRITE_ROLES)
    course = _course(patient)
    if course is None:
        return _no_course(request, patient)
    form = form_class(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        d = dict(form.cleaned_data)
        d.pop("confirm_dates", None)
        try:
            record(course=course, user=request.user, **d)
        except InputError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, done)
            return redirect("program", patient_pk=patient.pk)
    return render(request, "patients/form.html", {"form": form, "patient": patient, "title": title})


def prescription_create(request: HttpRequest, patient_pk: int) -> HttpResponse:
    return _supply_form(request, patient_pk, PrescriptionForm, program.prescription_record, "Record a prescription",
                        "Prescription recorded: the app chases it until a dispensing is recorded.")


def dispensing_create(request: HttpRequest, patient_pk: int) -> HttpResponse:
    return _supply_form(request, patient_pk, DispensingForm, program.dispensing_record, "Record a dispensing",
                        "Dispensing recorded; the supply is recomputed.")


@require_POST
def supply_void(request: HttpRequest, patient_pk: int, kind: str, record_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, CLINICAL_WRITE_ROLES)
    model = {"prescription": Prescription, "dispensing": Dispensing}.get(kind)
    record = model.objects.filter(course__patient=patient, pk=record_pk).first() if model else None
    if record is None:
        messages.error(request, "No such record for this patient.")
        return redirect("program", patient_pk=patient.pk)
    form = VoidForm(request.POST)
    try:
        if not form.is_valid():
            raise InputError("Say why the record is withdrawn.")
        program.supply_void(record=record, user=request.user, reason=form.cleaned_data["reason"])
    except InputError as exc:
        messages.error(request, f"Nothing was changed: {exc}")
    else:
        messages.success(request, f"The {kind} was withdrawn; the supply is recomputed.")
    return redirect("program", patient_pk=patient.pk)


def check_in(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient(request, patient_pk, CLINICAL_WRITE_ROLES)
    course = _course(patient)
    if course is None:
        return _no_course(request, patient)
    medicines = list(course.medications.filter(end_date__isnull=True))
    form = CheckInForm(request.POST or None, patient=patient, medicines=medicines,
                       initial={"done_on": clinic_today(patient.clinic)})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        entry = program.CheckInEntry(
            done_on=d["done_on"], mode=d["mode"], missed_doses=d["missed_doses"], missed_reason=d["missed_reason"],
            vomited_doses=d["vomited_doses"], symptoms=form.symptoms(), respiratory_new_or_worse=d["respiratory_new_or_worse"],
            heart_rate=d["heart_rate"], new_medicine=d["new_medicine"], new_medicine_category=d["new_medicine_category"],
            stopped_medicines=d["stopped_medicines"], capsules_on_hand=d["capsules_on_hand"], plan=d["plan"],
            stop_medicine_ids=tuple(int(pk) for pk in d.get("stop_medicines") or ()))
        try:
            done = program.check_in_record(course=course, user=request.user, entry=entry)
        except InputError as exc:
            form.add_error(None, str(exc))
        else:
            actions = "; ".join(f["text"] for f in done.findings)
            messages.success(request, f"Check-in recorded. {actions}" if actions else "Check-in recorded.")
            return redirect("program", patient_pk=patient.pk)
    item = program.check_in_item(course)
    return render(request, "monitoring/check_in.html", {
        "patient": patient, "course": course, "form": form, "item": item, "check_in_code": rules.CHECK_IN})
