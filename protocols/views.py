"""The desensitization protocol library: the published protocols side by side, read-only;
clinics copy one to make their own, versioned; a prescriber approves entered steps."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.access import ADMIN_ROLES, PRESCRIBER_ROLES, clinic_ids_with_role, require_role, require_role_somewhere
from protocols.desensitization import Step, final_dose, unmakeable, validate_steps
from protocols.dosing import LADDER
from protocols.errors import InputError
from protocols.forms import ProtocolForm, StepFormSet
from protocols.models import DesensitizationProtocol, DesensitizationStep

EDIT_ROLES = (*ADMIN_ROLES, *PRESCRIBER_ROLES)


def _protocol(request: HttpRequest, protocol_pk: int, *roles: str, change: str = "") -> DesensitizationProtocol:
    """The gate of the protocol pages: a published protocol (no clinic) is seen by all
    and, when `change` names what the view does, changed by none (404 with that text);
    a clinic's protocol only by its members (404), and with `roles` only by them (403)."""
    protocol = DesensitizationProtocol.objects.filter(pk=protocol_pk).prefetch_related("steps").first()
    if protocol is None or (protocol.clinic_id is not None and protocol.clinic_id not in request.user.clinic_ids()):
        raise Http404("Not found")
    if change and protocol.clinic_id is None:
        raise Http404(change)
    if roles:
        require_role(request.user, protocol.clinic_id, *roles)
    return protocol


def protocol_list(request: HttpRequest) -> HttpResponse:
    protocols = list(DesensitizationProtocol.objects.visible_to(request.user).prefetch_related("steps")
                     .select_related("clinic", "steps_approved_by"))
    for p in protocols:
        p.why = p.why_not_startable()
    return render(request, "protocols/protocol_list.html", {"protocols": protocols})


def protocol_detail(request: HttpRequest, protocol_pk: int) -> HttpResponse:
    protocol = _protocol(request, protocol_pk)
    strengths = sorted({s for c in request.user.clinics.all() for s in c.strengths} or {150})
    can_edit = protocol.clinic_id is not None and request.user.has_role(protocol.clinic_id, *EDIT_ROLES)
    can_copy = bool(clinic_ids_with_role(request.user, *EDIT_ROLES))
    can_approve = (protocol.clinic_id is not None and protocol.has_steps and protocol.steps_approved_by_id is None
                   and request.user.has_role(protocol.clinic_id, *PRESCRIBER_ROLES))
    return render(request, "protocols/protocol_detail.html", {
        "protocol": protocol, "why": protocol.why_not_startable(), "problems": unmakeable(protocol.step_list, strengths),
        "strengths": strengths, "can_edit": can_edit and protocol.superseded_by_id is None, "can_copy": can_copy,
        "can_approve": can_approve,
    })


@require_POST
def protocol_copy(request: HttpRequest, protocol_pk: int) -> HttpResponse:
    protocol = _protocol(request, protocol_pk)
    clinics = require_role_somewhere(request.user, *EDIT_ROLES)
    with transaction.atomic():
        copy = DesensitizationProtocol.objects.create(
            clinic_id=clinics[0], name=f"{protocol.name} — clinic copy", source=f"Copied from: {protocol.source}",
            start_dose=protocol.start_dose, final_dose=protocol.final_dose, duration_days=protocol.duration_days,
            adjunct=protocol.adjunct, setting=protocol.setting, outcome="", successful=None,
            evidence=protocol.evidence, copied_from=protocol,
        )
        for s in protocol.steps.all():
            DesensitizationStep.objects.create(protocol=copy, order=s.order, morning_mg=s.morning_mg,
                                               evening_mg=s.evening_mg, days=s.days)
    messages.success(request, "Copied. Enter or check the steps; a prescriber approves them before a plan can use it.")
    return redirect("protocol_edit", protocol_pk=copy.pk)


def protocol_edit(request: HttpRequest, protocol_pk: int) -> HttpResponse:
    protocol = _protocol(request, protocol_pk, *EDIT_ROLES, change="Published protocols are read-only; copy one to edit it.")
    if protocol.superseded_by_id:
        return redirect("protocol_edit", protocol_pk=protocol.superseded_by_id)
    initial = [{"morning_mg": s.morning_mg, "evening_mg": s.evening_mg, "days": s.days} for s in protocol.steps.all()]
    form = ProtocolForm(request.POST or None, instance=DesensitizationProtocol(
        **{f: getattr(protocol, f) for f in ProtocolForm.Meta.fields}))
    formset = StepFormSet(request.POST or None, initial=initial, prefix="steps")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        steps = [Step(f.cleaned_data["morning_mg"], f.cleaned_data["evening_mg"], f.cleaned_data["days"])
                 for f in formset.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        try:
            validate_steps(steps)
            if final_dose(steps) not in LADDER:
                raise InputError("The last step must reach 600, 450 or 300 mg twice daily (reference §3).")
        except InputError as exc:
            form.add_error(None, str(exc))
        else:
            with transaction.atomic():
                new = form.save(commit=False)
                new.clinic_id, new.copied_from = protocol.clinic_id, protocol.copied_from
                new.version = protocol.version + 1
                new.evidence = protocol.evidence
                new.save()
                for i, s in enumerate(steps, start=1):
                    DesensitizationStep.objects.create(protocol=new, order=i, morning_mg=s.morning_mg,
                                                       evening_mg=s.evening_mg, days=s.days)
                protocol.superseded_by = new
                protocol.save(update_fields=["superseded_by"])
            messages.success(request, f"Saved as version {new.version}; plans already started keep the version they "
                                      "started with. A prescriber approves the steps before a plan can use it.")
            return redirect("protocol_detail", protocol_pk=new.pk)
    return render(request, "protocols/protocol_form.html", {"protocol": protocol, "form": form, "formset": formset})


@require_POST
def protocol_approve(request: HttpRequest, protocol_pk: int) -> HttpResponse:
    protocol = _protocol(request, protocol_pk, *PRESCRIBER_ROLES, change="Published protocols are not approved here.")
    if not protocol.has_steps:
        messages.error(request, "Enter the steps first.")
    else:
        protocol.steps_approved_by, protocol.steps_approved_at = request.user, timezone.now()
        protocol.save(update_fields=["steps_approved_by", "steps_approved_at"])
        messages.success(request, "Steps approved: plans can now use this protocol.")
    return redirect("protocol_detail", protocol_pk=protocol.pk)
