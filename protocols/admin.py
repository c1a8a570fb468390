from django.contrib import admin
from django.db.models import Q

from protocols.models import DesensitizationProtocol, DesensitizationStep


class StepInline(admin.TabularInline):
    model = DesensitizationStep
    extra = 0

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DesensitizationProtocol)
class DesensitizationProtocolAdmin(admin.ModelAdmin):
    """Read-only here: published protocols never change, and clinic copies are versioned
    through the protocol pages."""

    list_display = ["name", "clinic", "version", "start_dose", "final_dose", "duration_days", "successful"]
    inlines = [StepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(Q(clinic__isnull=True) | Q(clinic__in=request.user.clinic_ids()))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
