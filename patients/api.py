"""The REST API of the patients app (issue #15): patients (read), lab results (read, and
create through the one intake path), recommendations (read), and FHIR Bundles.

Authenticated by a clinic's API key (accounts.api_auth); every queryset is limited to the
key's clinic, so another clinic's object answers 404 exactly as on the pages. Writes need
a clinical write role. A result sent here goes through patients.intake exactly as a typed
one goes through the lab page: graded, the engine run, due dates moved, on the history;
the request body is kept as a LabImport, linked to the results it produced."""

from __future__ import annotations

import json
import re

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.converters import MAX_ID
from patients import fhir_import, imports, intake
from patients.intake import Outcome, Sent
from patients.models import LabImport, LabResult, Patient, Recommendation
from protocols.errors import InputError

MAX_ROWS_PER_CALL = 1000


TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def bool_param(request: Request, name: str) -> bool:
    """Absent: false. Given: once, true or false (1/0, yes/no); an empty, repeated or other
    value is refused, never read as false (a misspelt dry run must not save for real)."""
    values = request.query_params.getlist(name)
    if not values:
        return False
    raw = values[0].strip().lower()
    if len(values) > 1 or raw not in TRUE + FALSE:
        raise ValidationError({name: "Once, and true or false."})
    return raw in TRUE


def only_params(request: Request, *names: str) -> None:
    """A write refuses query parameters it does not know ("dryRun", "DRY_RUN")."""
    if unknown := sorted(set(request.query_params) - set(names)):
        raise ValidationError({key: "Unknown query parameter." for key in unknown})


def id_param(request: Request, name: str) -> int | None:
    """An id from the query string, refused clearly when it is not one."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]{1,19}", raw) or int(raw) > MAX_ID:
        raise ValidationError({name: "An id (a whole number)."})
    return int(raw)


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class PatientSerializer(serializers.ModelSerializer):
    clinic = serializers.CharField(source="clinic.code", read_only=True)

    class Meta:
        model = Patient
        fields = ["id", "clinic", "mrn", "first_name", "last_name", "date_of_birth", "sex", "archived_at"]


class LabResultSerializer(serializers.ModelSerializer):
    patient_mrn = serializers.CharField(source="patient.mrn", read_only=True)

    class Meta:
        model = LabResult
        fields = ["id", "patient", "patient_mrn", "analyte", "comparator", "value", "unit", "reported_value",
                  "reported_unit", "uln", "lln", "x_uln", "grade", "grade_basis", "grading_version", "collected_at",
                  "status", "source", "amends", "entered_at"]


class RecommendationSerializer(serializers.ModelSerializer):
    patient = serializers.IntegerField(source="course.patient_id", read_only=True)
    patient_mrn = serializers.CharField(source="course.patient.mrn", read_only=True)
    headline = serializers.CharField(read_only=True)
    rules = serializers.SerializerMethodField()

    class Meta:
        model = Recommendation
        fields = ["id", "patient", "patient_mrn", "action", "headline", "rules", "status", "created_at"]

    def get_rules(self, rec: Recommendation) -> list[dict[str, str]]:
        return [{"id": r.get("id", ""), "text": r.get("text", ""), "source": r.get("source", "")}
                for r in (rec.output or {}).get("rules", [])]


@extend_schema(tags=["patients"], parameters=[OpenApiParameter("mrn", str, description="Exact MRN")])
class PatientList(generics.ListAPIView):
    serializer_class = PatientSerializer
    pagination_class = Pages

    def get_queryset(self):
        rows = Patient.objects.select_related("clinic").for_clinic(self.request.auth.clinic_id).order_by("mrn", "pk")
        if mrn := self.request.query_params.get("mrn"):
            rows = rows.filter(mrn=mrn)
        return rows


@extend_schema(tags=["patients"])
class PatientDetail(generics.RetrieveAPIView):
    serializer_class = PatientSerializer
    lookup_url_kwarg = "patient_pk"

    def get_queryset(self):
        return Patient.objects.select_related("clinic").for_clinic(self.request.auth.clinic_id)


@extend_schema(tags=["lab results"], parameters=[
    OpenApiParameter("patient", int, description="Only this patient's results"),
    OpenApiParameter("analyte", str, description="e.g. alt, total_bilirubin")])
class LabResultList(generics.ListAPIView):
    """Results in force, newest first."""

    serializer_class = LabResultSerializer
    pagination_class = Pages

    def get_queryset(self):
        rows = LabResult.objects.select_related("patient").for_clinic(self.request.auth.clinic_id) \
            .order_by("-collected_at", "-pk")
        params = self.request.query_params
        if (patient := id_param(self.request, "patient")) is not None:
            rows = rows.filter(patient_id=patient)
        if analyte := params.get("analyte"):
            rows = rows.filter(analyte=analyte)
        return rows


@extend_schema(tags=["lab results"])
class LabResultDetail(generics.RetrieveAPIView):
    serializer_class = LabResultSerializer
    lookup_url_kwarg = "lab_pk"

    def get_queryset(self):
        return LabResult.every.select_related("patient").for_clinic(self.request.auth.clinic_id)


@extend_schema(tags=["recommendations"], parameters=[
    OpenApiParameter("status", str, enum=[s.value for s in Recommendation.Status]),
    OpenApiParameter("patient", int)])
class RecommendationList(generics.ListAPIView):
    serializer_class = RecommendationSerializer
    pagination_class = Pages

    def get_queryset(self):
        rows = (Recommendation.objects.select_related("course__patient").for_clinic(self.request.auth.clinic_id)
                .order_by("-created_at", "-pk"))
        params = self.request.query_params
        if wanted := params.get("status"):
            if wanted not in Recommendation.Status.values:
                raise ValidationError({"status": f"One of {', '.join(Recommendation.Status.values)}."})
            rows = rows.filter(status=wanted)
        if (patient := id_param(self.request, "patient")) is not None:
            rows = rows.filter(course__patient_id=patient)
        return rows


# --- Intake -----------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Unknown keys are refused, not ignored: a misspelt "dryRun" must not save for real."""

    def to_internal_value(self, data):
        if isinstance(data, dict) and (unknown := sorted(set(data) - set(self.fields))):
            raise ValidationError({key: "Unknown field." for key in unknown})
        return super().to_internal_value(data)


class SentResultSerializer(StrictSerializer):
    mrn = serializers.CharField(max_length=32)
    test = serializers.CharField(max_length=80, help_text="A LOINC code (e.g. 1742-6) or a name the clinic taught.")
    value = serializers.CharField(max_length=40, help_text="A number, or a bound such as '<0.1'.")
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True, default="",
                                 help_text="UCUM code, e.g. U/L, umol/L, mg/dL.")
    collected_at = serializers.CharField(max_length=40, help_text="ISO 8601 with the time, e.g. "
                                                                  "2026-11-20T09:15:00+00:00.")
    reference_range = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    uln = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    lln = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    corrected = serializers.BooleanField(required=False, default=False)
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class IntakeRequestSerializer(StrictSerializer):
    results = SentResultSerializer(many=True, allow_empty=False, max_length=MAX_ROWS_PER_CALL)
    dry_run = serializers.BooleanField(required=False, default=False)


class VerdictSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="The row's position in `results`, from 1.")
    mrn = serializers.CharField()
    test = serializers.CharField()
    value = serializers.CharField(help_text="As read, with its comparator and unit.")
    collected_at = serializers.CharField(help_text="As read, in the clinic's time.")
    outcome = serializers.ChoiceField(choices=[o.value for o in Outcome])
    field = serializers.CharField()
    reason = serializers.CharField()
    result_ids = serializers.ListField(child=serializers.IntegerField())


class IntakeResponseSerializer(serializers.Serializer):
    import_id = serializers.IntegerField()
    dry_run = serializers.BooleanField()
    counts = serializers.DictField(child=serializers.IntegerField())
    outcomes = VerdictSerializer(many=True)


def _respond(imp: LabImport, verdicts: list[intake.Verdict], dry_run: bool) -> Response:
    body = {"import_id": imp.pk, "dry_run": dry_run, "counts": intake.counts(verdicts),
            "outcomes": [{"line": v.line, "outcome": str(v.outcome), "field": v.field, "reason": v.reason,
                          "mrn": v.mrn, "test": v.test, "value": v.value, "collected_at": v.when,
                          "result_ids": v.result_ids} for v in verdicts]}
    created = not dry_run and any(v.outcome in (Outcome.CREATE, Outcome.AMEND) and v.result_ids for v in verdicts)
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _run(request: Request, imp: LabImport, rows: list[Sent], dry_run: bool) -> Response:
    assert imp.clinic is not None
    verdicts = intake.check(imp.clinic, rows)
    if not dry_run:
        with transaction.atomic():
            intake.commit(verdicts, user=request.user, source=imports.SOURCE[imp.kind], lab_import=imp)
    imp.outcomes, imp.counts = [v.as_list() for v in verdicts], intake.counts(verdicts)
    imp.total = imp.processed = len(verdicts)
    imp.state = LabImport.State.DRY_RUN if dry_run else LabImport.State.DONE
    imp.save(update_fields=["outcomes", "counts", "total", "processed", "state"])
    return _respond(imp, verdicts, dry_run)


@extend_schema(tags=["lab results"], request=IntakeRequestSerializer,
               responses={200: IntakeResponseSerializer, 201: IntakeResponseSerializer})
class LabIntake(APIView):
    """Send results (up to 1,000 per call). Each one is created, skipped as already
    recorded, taken as a correction of a stored result, or refused with its field and
    reason; `dry_run` says what would happen and saves nothing. Sending the same results
    again creates nothing new."""

    def post(self, request: Request) -> Response:
        only_params(request)  # dry_run goes in the body
        data = IntakeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        clinic = request.auth.clinic
        raw = json.dumps(request.data, default=str, sort_keys=True).encode()
        imp = imports.lab_import_receive(clinic=clinic, kind=LabImport.Kind.API, name=f"API key {request.auth.name}",
                                         content=raw, user=request.user)
        rows = [Sent(line=i, mrn=r["mrn"], test=r["test"], value=r["value"], unit=r["unit"],
                     collected_at=r["collected_at"], range=r["reference_range"], uln=r["uln"], lln=r["lln"],
                     corrected=r["corrected"], reason=r["reason"])
                for i, r in enumerate(data.validated_data["results"], 1)]
        return _run(request, imp, rows, data.validated_data["dry_run"])


@extend_schema(tags=["lab results"], request={"application/fhir+json": OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
               parameters=[OpenApiParameter("dry_run", bool, description="Say what would happen; save nothing.")],
               responses={200: IntakeResponseSerializer, 201: IntakeResponseSerializer})
class FhirBundleIntake(APIView):
    """A FHIR R4 Bundle of laboratory Observations (subject by MRN identifier, LOINC code,
    valueQuantity in UCUM, referenceRange), through the same intake as every door."""

    def post(self, request: Request) -> Response:
        only_params(request, "dry_run")
        dry_run = bool_param(request, "dry_run")
        raw = request.body
        try:
            rows = fhir_import.sent_rows(raw)
        except InputError as exc:
            raise ValidationError({"bundle": str(exc)}) from None
        if len(rows) > MAX_ROWS_PER_CALL:
            raise ValidationError({"bundle": f"At most {MAX_ROWS_PER_CALL} Observations per call."})
        imp = imports.lab_import_receive(clinic=request.auth.clinic, kind=LabImport.Kind.FHIR,
                                         name=f"API key {request.auth.name}", content=raw, user=request.user)
        return _run(request, imp, rows, dry_run)
