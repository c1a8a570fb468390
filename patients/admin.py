from django.contrib import admin

from accounts.admin import ReadOnlyScopedAdmin, ScopedHistoryAdmin
from patients.models import (
    CheckIn,
    ClinicalEvent,
    ConcomitantMedication,
    DesensitizationPlan,
    Dispensing,
    DoseChangeEvent,
    EducationRecord,
    LabResult,
    Patient,
    PlanDay,
    PlanDecision,
    Prescription,
    Recommendation,
    RecommendationComment,
    ReferenceRange,
    TreatmentCourse,
)
from patients.services import clinical_event_saved


@admin.register(Patient)
class PatientAdmin(ScopedHistoryAdmin):
    list_display = ["mrn", "last_name", "first_name", "clinic", "archived_at"]
    # No search box: the admin searches with ?q= in the URL, which puts names and MRNs in
    # access logs (reliability.md S11). The app's patient list posts its search.
    list_filter = ["clinic"]


@admin.register(TreatmentCourse)
class CourseAdmin(ScopedHistoryAdmin):
    list_display = ["patient", "drug", "start_date", "dose_state", "dose_mg_bid", "end_date"]
    # The dose state moves only through dose change events.
    readonly_fields = ["dose_state", "dose_mg_bid", "resume_dose_mg_bid", "recovery_condition"]


@admin.register(DoseChangeEvent)
class DoseChangeEventAdmin(ScopedHistoryAdmin):
    list_display = ["course", "from_state", "from_dose_mg_bid", "to_state", "to_dose_mg_bid", "effective_date", "reason"]

    def has_add_permission(self, request):  # only through the state machine
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LabResult)
class LabResultAdmin(ScopedHistoryAdmin):
    """Read-only: results are append-only (issue #12). A correction is an amendment or a
    void, with a reason, on the result's page in the app, where the grade, the
    recommendation and the due dates follow it."""

    list_display = ["patient", "analyte", "reported_value", "reported_unit", "grade", "x_uln", "collected_at", "status"]
    list_filter = ["analyte", "status"]

    def get_queryset(self, request):
        # Amended and voided results too: the admin shows the record as it was, in full.
        return LabResult.every.for_user(request.user).select_related("patient")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ClinicalEvent)
class ClinicalEventAdmin(ScopedHistoryAdmin):
    list_display = ["patient", "kind", "grade", "onset_date", "resolved_date"]

    def save_model(self, request, obj, form, change):
        """An event edited here is a clinical change like one entered in the app: the
        engine runs again and due dates follow (patients.services)."""
        super().save_model(request, obj, form, change)
        clinical_event_saved(obj.patient)


@admin.register(ConcomitantMedication)
class MedicationAdmin(ScopedHistoryAdmin):
    list_display = ["course", "name", "category", "start_date", "end_date"]
    clinic_path = "course__patient__clinic"


@admin.register(ReferenceRange)
class ReferenceRangeAdmin(ScopedHistoryAdmin):
    list_display = ["clinic", "analyte", "uln", "lln"]


@admin.register(Recommendation)
class RecommendationAdmin(ScopedHistoryAdmin):
    list_display = ["course", "action", "status", "created_at", "decided_by", "decided_at"]
    list_filter = ["status", "action"]
    readonly_fields = [f.name for f in Recommendation._meta.fields]

    def has_add_permission(self, request):  # only the engine creates them; only prescribers decide, in the app
        return False


@admin.register(RecommendationComment)
class RecommendationCommentAdmin(ReadOnlyScopedAdmin):
    list_display = ["recommendation", "author", "created_at"]
    clinic_path = "recommendation__course__patient__clinic"


@admin.register(DesensitizationPlan)
class DesensitizationPlanAdmin(ReadOnlyScopedAdmin):
    list_display = ["patient", "protocol", "start_date", "status", "approved_by"]
    list_filter = ["status"]


@admin.register(PlanDay)
class PlanDayAdmin(ReadOnlyScopedAdmin):
    list_display = ["plan", "number", "date", "step", "morning_mg", "evening_mg", "morning_taken", "evening_taken", "reaction"]
    clinic_path = "plan__course__patient__clinic"


@admin.register(PlanDecision)
class PlanDecisionAdmin(ReadOnlyScopedAdmin):
    list_display = ["plan", "decision", "decided_by", "decided_at"]
    clinic_path = "plan__course__patient__clinic"


# The oral therapy program (issue #16): written through its pages, where the supply and the
# rules follow each record; read here behind the same clinic gate.
@admin.register(EducationRecord)
class EducationRecordAdmin(ReadOnlyScopedAdmin):
    list_display = ["course", "given_on", "dose_mg_bid", "recorded_by"]


@admin.register(Prescription)
class PrescriptionAdmin(ReadOnlyScopedAdmin):
    list_display = ["course", "written_on", "capsules", "strength_mg", "void_reason"]


@admin.register(Dispensing)
class DispensingAdmin(ReadOnlyScopedAdmin):
    list_display = ["course", "dispensed_on", "capsules", "strength_mg", "void_reason"]


@admin.register(CheckIn)
class CheckInAdmin(ReadOnlyScopedAdmin):
    list_display = ["course", "done_on", "mode", "missed_doses", "on_time", "recorded_by"]
