from django.contrib import admin
from django.db.models import Q

from accounts.admin import ClinicScopedAdmin, ReadOnlyScopedAdmin
from monitoring.models import (
    ClinicSettings,
    Digest,
    DirtyPatient,
    FollowUp,
    Heartbeat,
    MonitoringItem,
    MonitoringRecord,
    NotificationPreference,
    Requirement,
    RequirementVersion,
)
from patients.models import Patient


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_run_at", "runs"]
    readonly_fields = ["name", "last_run_at", "runs"]

    def has_add_permission(self, request):  # written only by the jobs
        return False


@admin.register(ClinicSettings)
class ClinicSettingsAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "due_soon_days", "grace_days", "escalation_days", "digest_time", "digest_counts_only"]
    clinic_path = "clinic"


@admin.register(Requirement)
class RequirementAdmin(admin.ModelAdmin):
    """Read-only here, for everyone: the shared defaults (no clinic) belong to every clinic,
    and a clinic changes its own copy on the monitoring plan page, which keeps versions
    (an admin save would switch a default off for every clinic, and skip the versions)."""

    list_display = ["label", "code", "clinic", "label_interval", "active"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(Q(clinic__isnull=True) | Q(clinic__in=request.user.clinic_ids()))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RequirementVersion)
class RequirementVersionAdmin(admin.ModelAdmin):
    list_display = ["requirement", "effective_from", "created_by", "note"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(
            Q(requirement__clinic__isnull=True) | Q(requirement__clinic__in=request.user.clinic_ids()))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MonitoringItem)
class MonitoringItemAdmin(ReadOnlyScopedAdmin):
    list_display = ["course", "requirement", "due_date", "overdue_from", "last_done", "snoozed_until"]
    clinic_path = "clinic"


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyScopedAdmin):
    list_display = ["item", "kind", "snoozed_until", "recorded_by", "recorded_at"]
    clinic_path = "item__clinic"


@admin.register(MonitoringRecord)
class MonitoringRecordAdmin(ReadOnlyScopedAdmin):
    list_display = ["patient", "requirement_code", "performed_on", "recorded_by"]
    clinic_path = "patient__clinic"


@admin.register(Digest)
class DigestAdmin(ReadOnlyScopedAdmin):
    list_display = ["recipient", "clinic", "kind", "for_date", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status", "kind"]
    clinic_path = "clinic"


@admin.register(DirtyPatient)
class DirtyPatientAdmin(admin.ModelAdmin):
    list_display = ["patient_id", "marked_at"]

    def get_queryset(self, request):
        ids = Patient.objects.for_user(request.user).values("pk")
        return super().get_queryset(request).filter(patient_id__in=ids)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ClinicScopedAdmin):
    list_display = ["user", "digests_enabled", "updated_at"]
    clinic_path = "user__memberships__clinic"
