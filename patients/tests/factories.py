"""One factory per model of patients (style.md 3.5), and the two helpers most tests start
from: `clinic_ranges` (a clinic's default reference ranges) and `started_patient` (a
patient on 600 mg BID, started through the service as the pages do).

A factory saves a row as it is stored; the workflows that follow from a row (grading a
panel against the clinic's ranges, asking the engine, recomputing due dates) belong to
the services: record results with patients.services.lab_panel_record and start courses
with course_start when the test is about those consequences.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from patients.models import (
    AnalyteAlias,
    CheckIn,
    ClinicalEvent,
    ConcomitantMedication,
    DesensitizationPlan,
    Dispensing,
    DoseChangeEvent,
    EducationRecord,
    ImportMapping,
    LabImport,
    LabResult,
    Patient,
    PlanDay,
    PlanDecision,
    Prescription,
    ProgramStatus,
    Recommendation,
    RecommendationComment,
    ReferenceRange,
    TreatmentCourse,
)
from protocols import desensitization as desensitization_rules
from protocols.dosing import DoseState, Reason


def _days_ago(n: int):
    return lambda: timezone.localdate() - timedelta(days=n)


class PatientFactory(DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    mrn = factory.Sequence(lambda n: f"MRN{n:05d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    date_of_birth = date(1960, 5, 17)
    sex = "F"
    alk_test_method = "FISH"
    alk_test_result = "positive"


class TreatmentCourseFactory(DjangoModelFactory[TreatmentCourse]):
    """A course as created, before its first dose (the model's defaults). `on_drug=True`:
    on 600 mg BID since `start_date`, with the start event that course_start records."""

    class Meta:
        model = TreatmentCourse
        skip_postgeneration_save = True

    class Params:
        on_drug = factory.Trait(
            dose_state=DoseState.ON_DRUG,
            dose_mg_bid=600,
            start_event=factory.RelatedFactory("patients.tests.factories.DoseChangeEventFactory", "course"),
        )

    patient = factory.SubFactory(PatientFactory)
    start_date = factory.LazyFunction(_days_ago(30))


class DoseChangeEventFactory(DjangoModelFactory[DoseChangeEvent]):
    """The start of a course: not started → 600 mg BID on its start date."""

    class Meta:
        model = DoseChangeEvent

    course = factory.SubFactory(TreatmentCourseFactory, dose_state=DoseState.ON_DRUG, dose_mg_bid=600)
    from_state = DoseState.NOT_STARTED
    to_state = factory.LazyAttribute(lambda e: e.course.dose_state)
    to_dose_mg_bid = factory.LazyAttribute(lambda e: e.course.dose_mg_bid)
    effective_date = factory.LazyAttribute(lambda e: e.course.start_date)
    reason = Reason.START
    ordered_by = factory.SubFactory("accounts.tests.factories.UserFactory")
    recorded_by = factory.SelfAttribute("ordered_by")


class ConcomitantMedicationFactory(DjangoModelFactory[ConcomitantMedication]):
    class Meta:
        model = ConcomitantMedication

    course = factory.SubFactory(TreatmentCourseFactory)
    name = "Bisoprolol"
    category = ConcomitantMedication.Category.BETA_BLOCKER
    start_date = factory.LazyAttribute(lambda m: m.course.start_date)


class ReferenceRangeFactory(DjangoModelFactory[ReferenceRange]):
    class Meta:
        model = ReferenceRange

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    analyte = "alt"
    uln = Decimal("40")
    lln = None


class LabResultFactory(DjangoModelFactory[LabResult]):
    """One result as the laboratory reported it, limits included. `save()` derives the
    canonical value, unit, grade and × ULN (LabResult.derive), as for every new row; the
    row is append-only from then on."""

    class Meta:
        model = LabResult

    patient = factory.SubFactory(PatientFactory)
    analyte = "alt"
    reported_value = Decimal("30")
    reported_unit = "U/L"
    reported_uln = Decimal("40")
    collected_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    entered_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class ClinicalEventFactory(DjangoModelFactory[ClinicalEvent]):
    """Grade 1 myalgia a week ago. For a rash: kind="rash" and `rash_bsa_percent`."""

    class Meta:
        model = ClinicalEvent

    patient = factory.SubFactory(PatientFactory)
    kind = ClinicalEvent.Kind.MYALGIA
    onset_date = factory.LazyFunction(_days_ago(7))
    grade = 1
    recorded_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class RecommendationFactory(DjangoModelFactory[Recommendation]):
    """A pending 'prescriber review' (the engine's answer when the label has no rule)."""

    class Meta:
        model = Recommendation

    course = factory.SubFactory(TreatmentCourseFactory, on_drug=True)
    action = "review"
    output = factory.LazyAttribute(lambda r: {"action": r.action, "rules": []})
    inputs = factory.LazyAttribute(lambda r: {"dose_state": r.course.dose_state, "dose_mg_bid": r.course.dose_mg_bid})
    trigger_key = factory.Sequence(lambda n: f"test:{n}")


class RecommendationCommentFactory(DjangoModelFactory[RecommendationComment]):
    class Meta:
        model = RecommendationComment

    recommendation = factory.SubFactory(RecommendationFactory)
    author = factory.SubFactory("accounts.tests.factories.UserFactory")
    text = "Patient phoned: feels well."


class DesensitizationPlanFactory(DjangoModelFactory[DesensitizationPlan]):
    """A running plan on a clinic protocol of two steps (2 days at 150/150 mg, then
    600/600 mg), after a resolved grade 3 rash; its days materialized from the steps as
    at approval (patients.desensitization.plan_start). `calendar=False`: no days."""

    class Meta:
        model = DesensitizationPlan
        skip_postgeneration_save = True
        exclude = ("patient",)  # the plan's patient is its course's

    patient = factory.SubFactory(PatientFactory)
    course = factory.SubFactory(TreatmentCourseFactory, patient=factory.SelfAttribute("..patient"),
                                dose_state=DoseState.DESENSITIZATION)
    protocol = factory.SubFactory("protocols.tests.factories.DesensitizationProtocolFactory",
                                  clinic=factory.SelfAttribute("..patient.clinic"),
                                  steps=[(150, 150, 2), (600, 600, 1)],
                                  steps_approved_by=factory.SelfAttribute("..approved_by"))
    rash_event = factory.SubFactory(ClinicalEventFactory, patient=factory.SelfAttribute("..patient"),
                                    kind=ClinicalEvent.Kind.RASH, grade=3, rash_bsa_percent=40,
                                    onset_date=factory.LazyFunction(_days_ago(40)),
                                    resolved_date=factory.LazyFunction(_days_ago(10)))
    start_date = factory.LazyFunction(timezone.localdate)
    strengths = factory.LazyAttribute(lambda p: p.patient.clinic.strengths)
    final_dose_mg_bid = 600
    approved_by = factory.SubFactory("accounts.tests.factories.UserFactory")

    @factory.post_generation
    def calendar(self, create: bool, extracted: bool | None, **kwargs) -> None:
        if not create or extracted is False:
            return
        PlanDay.objects.bulk_create(
            PlanDay(plan=self, number=d.number, date=d.day, step=d.step, morning_mg=d.morning_mg,
                    evening_mg=d.evening_mg)
            for d in desensitization_rules.calendar(self.protocol.step_list, self.start_date))


class PlanDayFactory(DjangoModelFactory[PlanDay]):
    """Day 1 of a plan, not recorded yet."""

    class Meta:
        model = PlanDay

    plan = factory.SubFactory(DesensitizationPlanFactory, calendar=False)
    number = 1
    date = factory.LazyAttribute(lambda d: d.plan.start_date)
    step = 1
    morning_mg = 150
    evening_mg = 150


class PlanDecisionFactory(DjangoModelFactory[PlanDecision]):
    class Meta:
        model = PlanDecision

    plan = factory.SubFactory(DesensitizationPlanFactory)
    decision = PlanDecision.Decision.CONTINUE
    reason = "Reaction resolved with an antihistamine; continue."
    decided_by = factory.SubFactory("accounts.tests.factories.UserFactory")


DEFAULT_RANGES = {"alt": ("40", None), "ast": ("40", None), "total_bilirubin": ("1.2", None),
                  "creatinine": ("1.1", None), "cpk": ("170", None), "hemoglobin": (None, "12"),
                  "heart_rate": (None, "60")}


def clinic_ranges(clinic):
    for analyte, (uln, lln) in DEFAULT_RANGES.items():
        ReferenceRangeFactory(clinic=clinic, analyte=analyte, uln=uln, lln=lln)


def started_patient(clinic, prescriber, *, days_ago=30, **kw):
    """A patient on 600 mg BID since `days_ago` days."""
    from patients.services import course_start

    patient = PatientFactory(clinic=clinic, **kw)
    course_start(patient=patient, start_date=timezone.localdate() - timedelta(days=days_ago),
                 ordered_by=prescriber, recorded_by=prescriber)
    return patient


class LabImportFactory(DjangoModelFactory[LabImport]):
    """A small CSV file as received (not yet read)."""

    class Meta:
        model = LabImport

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    kind = LabImport.Kind.CSV
    name = "results.csv"
    content = b"MRN,Test,Result,Units,Collected at\nA100,1742-6,35,U/L,2026-11-20 09:15\n"
    sha256 = factory.LazyAttribute(lambda i: hashlib.sha256(i.content).hexdigest())
    created_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class AnalyteAliasFactory(DjangoModelFactory[AnalyteAlias]):
    class Meta:
        model = AnalyteAlias

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    name = "Leberwert 1"
    analyte = "alt"
    created_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class ImportMappingFactory(DjangoModelFactory[ImportMapping]):
    class Meta:
        model = ImportMapping

    clinic = factory.SubFactory("accounts.tests.factories.ClinicFactory")
    header_key = factory.Sequence(lambda n: hashlib.sha256(str(n).encode()).hexdigest())
    mapping = factory.LazyFunction(lambda: {"mrn": 0, "test": 1, "value": 2, "unit": 3, "collected_at": 4})


# --- the oral therapy program (issue #16); the services in monitoring.program record them
# with their consequences (supply recomputed, events raised).

class EducationRecordFactory(DjangoModelFactory[EducationRecord]):
    class Meta:
        model = EducationRecord

    course = factory.SubFactory(TreatmentCourseFactory, on_drug=True)
    given_on = factory.LazyAttribute(lambda e: e.course.start_date)
    topics = factory.LazyFunction(lambda: ["dose", "food", "whole", "missed", "vomited", "sun", "contraception", "report",
                                           "storage"])
    dose_mg_bid = 600
    recorded_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class PrescriptionFactory(DjangoModelFactory[Prescription]):
    class Meta:
        model = Prescription

    course = factory.SubFactory(TreatmentCourseFactory, on_drug=True)
    written_on = factory.LazyAttribute(lambda p: p.course.start_date)
    capsules = 224
    recorded_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class DispensingFactory(DjangoModelFactory[Dispensing]):
    class Meta:
        model = Dispensing

    course = factory.SubFactory(TreatmentCourseFactory, on_drug=True)
    dispensed_on = factory.LazyAttribute(lambda d: d.course.start_date)
    capsules = 224
    recorded_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class CheckInFactory(DjangoModelFactory[CheckIn]):
    class Meta:
        model = CheckIn

    course = factory.SubFactory(TreatmentCourseFactory, on_drug=True)
    done_on = factory.LazyAttribute(lambda c: c.course.start_date + timedelta(days=7))
    mode = CheckIn.Mode.PHONE
    recorded_by = factory.SubFactory("accounts.tests.factories.UserFactory")


class ProgramStatusFactory(DjangoModelFactory[ProgramStatus]):
    class Meta:
        model = ProgramStatus

    course = factory.SubFactory(TreatmentCourseFactory, on_drug=True)
    clinic = factory.LazyAttribute(lambda s: s.course.patient.clinic)
    computed_on = factory.LazyFunction(timezone.localdate)
