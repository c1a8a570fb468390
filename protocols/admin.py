from django.contrib import admin
from django.db.models import Q

from accounts.admin import ReadOnlyMixin
from protocols.models import DesensitizationProtocol, DesensitizationStep


class StepInline(ReadOnlyMixin, admin.TabularInline):
    model = DesensitizationStep
    extra = 0


@admin.register(DesensitizationProtocol)
class DesensitizationProtocolAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only here: published protocols never change, and clinic copies are versioned
    through the protocol pages."""

    list_display = ["name", "clinic", "version", "start_dose", "final_dose", "duration_days", "successful"]
    inlines = [StepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(Q(clinic__isnull=True) | Q(clinic__in=request.user.clinic_ids()))
