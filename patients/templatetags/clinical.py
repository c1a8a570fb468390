from decimal import Decimal

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

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
    text = f"{value.normalize():f}"
    return text


@register.filter
def xuln(value):
    if value is None:
        return "—"
    return f"{Decimal(value).quantize(Decimal('0.01')).normalize():f}×"
