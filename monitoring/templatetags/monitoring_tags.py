"""The patient page's monitoring section, as an inclusion tag: the patients app's page
asks for it by name instead of other apps registering views into it."""

from __future__ import annotations

from typing import Any

from django import template

from monitoring import selectors

register = template.Library()


@register.inclusion_tag("monitoring/_patient_status.html", takes_context=True)
def patient_monitoring(context: template.Context, patient: Any) -> dict[str, Any]:
    """Each requirement's last test, next due date and status on the clinic's today, and
    the link to record a test done elsewhere (for those who may write)."""
    return {"patient": patient, "rows": selectors.patient_item_rows(patient), "can_write": context.get("can_write")}
