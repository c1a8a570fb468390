"""The REST API's monitoring status (issue #15): each patient's monitoring items with
their due date and status, read through the key's clinic (accounts.api_auth)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers

from accounts.clinic_time import clinic_today
from monitoring import rules
from monitoring.models import ClinicSettings, MonitoringItem
from patients.api import Pages, bool_param, id_param

STATUSES = (rules.NOT_REQUIRED, rules.OK, rules.DUE_SOON, rules.OVERDUE, rules.SNOOZED)


class MonitoringItemSerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="course.patient_id", read_only=True)
    patient_mrn = serializers.CharField(source="course.patient.mrn", read_only=True)
    requirement = serializers.CharField(source="requirement.code", read_only=True)
    label = serializers.CharField(source="requirement.label", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = MonitoringItem
        fields = ["id", "patient", "patient_mrn", "requirement", "label", "due_date", "overdue_from", "last_done",
                  "snoozed_until", "status"]

    def get_status(self, item: MonitoringItem) -> str:
        return item.status_on(self.context["today"], self.context["due_soon_days"])


@extend_schema(tags=["monitoring"], parameters=[
    OpenApiParameter("patient", int, description="Only this patient's items"),
    OpenApiParameter("overdue", bool, description="Only items overdue today (the clinic's day)")])
class MonitoringStatusList(generics.ListAPIView):
    serializer_class = MonitoringItemSerializer
    pagination_class = Pages

    def get_queryset(self):
        rows = (MonitoringItem.objects.for_clinic(self.request.auth.clinic_id)
                .select_related("course__patient", "requirement").order_by("course__patient__mrn", "requirement__code",
                                                                           "pk"))
        if (patient := id_param(self.request, "patient")) is not None:
            rows = rows.filter(course__patient_id=patient)
        if bool_param(self.request, "overdue"):
            rows = rows.filter(overdue_from__lte=self._today())
        return rows

    def _today(self):
        return clinic_today(self.request.auth.clinic)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self.request, "auth", None) is not None:
            settings_row = ClinicSettings.objects.filter(clinic_id=self.request.auth.clinic_id).first()
            context["today"] = self._today()
            context["due_soon_days"] = settings_row.due_soon_days if settings_row else rules.DEFAULT_DUE_SOON_DAYS
        return context
