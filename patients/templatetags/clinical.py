from datetime import datetime
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from protocols.analytes import ratio_to_decimal

register = template.Library()


@register.simple_tag
def grade_badge(grade, version="CTCAE v5.0"):
    """A badge that reads 'G3' (text, not only colour), with the version in its title."""
    if grade is None:
        return mark_safe('<span class="badge grade grade-0" title="no numeric grade">—</span>')  # noqa: S308 - constant
    return format_html(
        '<span class="badge grade grade-{}" title="{} grade {}">G{}</span>', min(int(grade), 5), version, grade, grade
    )


@register.filter
def num(value, places=None):
    """A decimal without trailing zeros (12.5000 -> 12.5)."""
    if value is None or value == "":
        return "—"
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-int(places)))
    return f"{value.normalize():f}"


@register.filter
def measured(lab, which: str = "value"):
    """A result's value as measured, its comparator kept: "<0.1" for a censored value is
    never shown as 0.1 (reliability.md I3). `which` is "value" (canonical) or "reported"."""
    if lab is None:
        return "—"
    get = lab.get if isinstance(lab, dict) else lambda name, default=None: getattr(lab, name, default)
    number = get("reported_value" if which == "reported" else "value")
    return f"{get('comparator', '') or ''}{num(number)}"


@register.filter
def bound(lab) -> str:
    """"≥" or "≤" before the multiple and the grade of a censored result: graded at its
    bound, the true value (and grade) may be beyond it (reliability.md I3)."""
    comparator = (lab.get("comparator") if isinstance(lab, dict) else getattr(lab, "comparator", "")) or ""
    return "≥" if comparator.startswith(">") else "≤" if comparator.startswith("<") else ""


@register.filter
def xuln(value):
    """× ULN to 2 decimals, rounded up: never shown below a threshold it is above
    (reference §4, A7; protocols.analytes.ratio_to_decimal)."""
    if value is None:
        return "—"
    return f"{ratio_to_decimal(Decimal(value), 2).normalize():f}×"


@register.filter
def iso_minutes(value) -> str:
    """A datetime-local input's value: ISO with a "T", to the minute, in the active zone
    (a browser shows any other form as empty, and an untouched save would erase it)."""
    if isinstance(value, datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).strftime("%Y-%m-%dT%H:%M")
    return str(value or "")[:16].replace(" ", "T")
