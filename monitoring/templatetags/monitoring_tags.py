"""The patient page's monitoring section, as an inclusion tag: the patients app's page
asks for it by name instead of other apps registering views into it."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.clinic_time import clinic_today
from monitoring import selectors
from patients.models import ProgramStatus

register = template.Library()


@register.inclusion_tag("monitoring/_patient_status.html", takes_context=True)
def patient_monitoring(context: template.Context, patient: Any) -> dict[str, Any]:
    """Each requirement's last test, next due date and status on the clinic's today, and
    the link to record a test done elsewhere (for those who may write)."""
    return {"patient": patient, "rows": selectors.patient_item_rows(patient), "can_write": context.get("can_write")}


@register.inclusion_tag("monitoring/_patient_program.html", takes_context=True)
def patient_program(context: template.Context, patient: Any, course: Any) -> dict[str, Any]:
    """The oral therapy program in brief (issue #16): education, supply, the link to the
    program's page. Two small reads; the page itself has the rest."""
    out: dict[str, Any] = {"patient": patient, "course": course}
    if course is not None and course.end_date is None:
        status = ProgramStatus.objects.filter(course=course).first()  # the one read: stored by program_recompute
        today = clinic_today(patient.clinic)
        out.update(status=status, runs_out_soon=bool(status and status.runs_out_soon(today)),
                   ran_out=bool(status and status.ran_out(today)))
    return out
