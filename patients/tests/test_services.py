"""Lab panels, dose changes and events through the services: validation, atomicity,
grading and history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from patients.models import ClinicalEvent, DoseChangeEvent, LabResult, TreatmentCourse
from patients.services import LabEntry, PanelError, clinical_event_record, dose_change_record, lab_panel_record
from patients.tests.factories import clinic_ranges, started_patient
from protocols.dosing import Dose, DoseState, Reason
from protocols.errors import DoseTransitionError

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(clinic_a, prescriber):
    clinic_ranges(clinic_a)
    return started_patient(clinic_a, prescriber)


def record(patient, user, *entries, when=None, **kw):
    return lab_panel_record(patient=patient, collected_at=when or timezone.now() - timedelta(hours=1),
                            entries=list(entries), entered_by=user, **kw)


def test_panel_saves_every_analyte_with_grade_and_multiple_of_uln(patient, nurse):
    rows = record(patient, nurse, LabEntry("alt", "250"), LabEntry("ast", "90"), LabEntry("total_bilirubin", "0.8"),
                  LabEntry("hemoglobin", "9.0"), LabEntry("heart_rate", "52"))
    by = {r.analyte: r for r in rows}
    assert by["alt"].grade == 3 and by["alt"].x_uln == Decimal("6.250")
    assert by["ast"].grade == 1  # 2.25× ULN
    assert by["total_bilirubin"].grade == 0
    assert by["hemoglobin"].grade == 2
    assert by["heart_rate"].grade is None
    assert LabResult.objects.count() == 5
    assert by["alt"].grading_version == "CTCAE v5.0"


def test_bilirubin_in_umol_per_litre_is_converted_and_the_reported_value_kept(patient, nurse):
    (row,) = record(patient, nurse, LabEntry("total_bilirubin", "34.2", unit="µmol/L", uln="20.52"))
    assert row.value == Decimal("2.0000")
    assert row.uln == Decimal("1.2000")
    assert (row.reported_value, row.reported_unit) == (Decimal("34.2"), "µmol/L")
    assert row.grade == 2  # 1.67× ULN


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        (LabEntry("alt", "-5"), "alt_value", "cannot be negative"),
        (LabEntry("heart_rate", "900"), "heart_rate_value", "not a possible value"),
        (LabEntry("alt", "abc"), "alt_value", "must be a number"),
        (LabEntry("alt", "NaN"), "alt_value", "must be a number"),
        (LabEntry("alt", "2_40"), "alt_value", "must be a number"),
        (LabEntry("alt", "1e999999"), "alt_value", "must be between 1e-30 and 1e15"),
        (LabEntry("alt", "50", unit="furlongs"), "alt_unit", "Unknown unit"),
        (LabEntry("hemoglobin", "7", unit="mmol/L"), "hemoglobin_unit", "Unknown unit"),
        (LabEntry("alt", "50", uln="0"), "alt_limit", "greater than zero"),
    ],
)
def test_bad_value_gets_a_message_on_its_field_and_nothing_is_saved(patient, nurse, entry, field, message):
    with pytest.raises(PanelError) as exc:
        record(patient, nurse, LabEntry("ast", "30"), entry)
    assert message in exc.value.errors[field]
    assert LabResult.objects.count() == 0  # the good AST was not saved either


def test_collection_time_in_the_future_is_refused(patient, nurse):
    with pytest.raises(PanelError) as exc:
        record(patient, nurse, LabEntry("alt", "30"), when=timezone.now() + timedelta(hours=2))
    assert "in the future" in exc.value.errors["collected_at"]
    assert not LabResult.objects.exists()


@pytest.mark.parametrize(("when", "message"), [
    (datetime(1899, 12, 31, 12, 0, tzinfo=UTC), "before 1900"),
    (datetime(1960, 5, 16, 12, 0, tzinfo=UTC), "date of birth"),  # the factory's patients are born 17 May 1960
])
def test_the_service_applies_the_date_rule_for_imports_too(patient, nurse, when, message):
    with pytest.raises(PanelError) as exc:
        record(patient, nurse, LabEntry("alt", "30"), when=when)
    assert message in exc.value.errors["collected_at"]
    assert not LabResult.objects.exists()


def test_missing_uln_with_no_clinic_default_is_refused(clinic_b, outsider_prescriber, outsider):
    patient = started_patient(clinic_b, outsider_prescriber)  # clinic B has no default ranges
    with pytest.raises(PanelError) as exc:
        record(patient, outsider, LabEntry("alt", "30"))
    assert "no default range" in exc.value.errors["alt_limit"]
    assert not LabResult.objects.exists()


def test_duplicate_result_same_patient_analyte_and_time_is_refused(patient, nurse):
    when = timezone.now() - timedelta(hours=3)
    record(patient, nurse, LabEntry("alt", "30"), when=when)
    with pytest.raises(PanelError) as exc:
        record(patient, nurse, LabEntry("alt", "31"), LabEntry("ast", "20"), when=when)
    assert "already recorded" in exc.value.errors["alt_value"]
    assert LabResult.objects.count() == 1


def test_baseline_abnormal_alt_grades_against_the_baseline(patient, nurse):
    record(patient, nurse, LabEntry("alt", "60"), is_baseline=True, when=timezone.now() - timedelta(days=40))
    (row,) = record(patient, nurse, LabEntry("alt", "100"))
    assert row.grade == 1  # 2.5× ULN would be G1 too; 1.67× BL is G1 (§8.1 BL abnormal)
    (row,) = record(patient, nurse, LabEntry("alt", "240"), when=timezone.now() - timedelta(minutes=10))
    assert row.grade == 2  # 6× ULN would be G3 against ULN; 4× BL is G2
    assert "baseline abnormal" in row.grade_basis


def test_a_later_baseline_regrades_earlier_results(patient, nurse):
    (row,) = record(patient, nurse, LabEntry("alt", "240"))
    assert row.grade == 3
    record(patient, nurse, LabEntry("alt", "60"), is_baseline=True, when=timezone.now() - timedelta(days=40))
    row.refresh_from_db()
    assert row.grade == 2


def test_dose_change_writes_the_event_and_the_course_state_together(patient, prescriber, nurse):
    course = patient.courses.get()
    (lab,) = record(patient, nurse, LabEntry("alt", "250"))
    dose_change_record(course=course, to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=450),
                       effective_date=timezone.localdate(), reason=Reason.TOXICITY, toxicity="ALT increased",
                       toxicity_grade=3, triggering_lab=lab, ordered_by=prescriber, recorded_by=nurse,
                       recovery_condition=[{"analyte": "alt", "max_x_uln": 3.0, "or_baseline": True}])
    course.refresh_from_db()
    assert (course.dose_state, course.dose_mg_bid, course.resume_dose_mg_bid) == ("withheld", None, 450)
    assert course.recovery_condition[0]["analyte"] == "alt"
    event = course.dose_events.last()
    assert (event.from_state, event.from_dose_mg_bid, event.to_state) == ("on_drug", 600, "withheld")
    assert event.ordered_by == prescriber and event.recorded_by == nurse and event.triggering_lab == lab


def test_refused_dose_change_leaves_no_event_and_no_state_change(patient, prescriber):
    course = patient.courses.get()
    dose_change_record(course=course, to=Dose(DoseState.DISCONTINUED), effective_date=timezone.localdate(),
                       reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    before = DoseChangeEvent.objects.count()
    with pytest.raises(DoseTransitionError, match="permanently discontinued"):
        dose_change_record(course=course, to=Dose(DoseState.ON_DRUG, 600), effective_date=timezone.localdate(),
                           reason=Reason.PRESCRIBER_CHOICE, note="restart", ordered_by=prescriber, recorded_by=prescriber)
    course.refresh_from_db()
    assert DoseChangeEvent.objects.count() == before
    assert course.dose_state == "discontinued"
    assert course.end_date == timezone.localdate() and course.end_reason == "toxicity"


def test_course_not_on_treatment_after_discontinuation(patient, prescriber):
    course = patient.courses.get()
    assert TreatmentCourse.objects.on_treatment().filter(pk=course.pk).exists()
    dose_change_record(course=course, to=Dose(DoseState.DISCONTINUED), effective_date=timezone.localdate(),
                       reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    assert not TreatmentCourse.objects.on_treatment().filter(pk=course.pk).exists()


def test_a_result_cannot_be_changed_in_place(patient, nurse):
    """Results are append-only (issue #12 item 2): a correction is an amendment."""
    from patients.models import ResultIsAppendOnly

    (row,) = record(patient, nurse, LabEntry("alt", "30"))
    row.reported_value = Decimal("31")
    with pytest.raises(ResultIsAppendOnly):
        row.save()
    with pytest.raises(ResultIsAppendOnly):
        row.delete()
    row.refresh_from_db()
    assert row.reported_value == Decimal("30") and [h.history_type for h in row.history.all()] == ["+"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "bradycardia", "grade": 2}, "bradycardia", "asymptomatic, symptomatic or life-threatening"),
        ({"kind": "bradycardia", "bradycardia": "life_threatening", "grade": 2}, "grade", "grade 4"),
        ({"kind": "rash", "grade": 4}, "grade", "no Grade 4"),
        ({"kind": "ild", "grade": 2}, "ild_causality", "causality"),
        ({"kind": "hemolysis"}, "hemolysis_status", "suspected, confirmed"),
        ({"kind": "rash", "rash_bsa_percent": 120}, "rash_bsa_percent", "0 to 100"),
        ({"kind": "myalgia", "onset_date_offset": 3}, "onset_date", "future"),
    ],
)
def test_inconsistent_clinical_event_is_refused(patient, nurse, fields, field, message):
    fields = dict(fields)
    offset = fields.pop("onset_date_offset", -1)
    with pytest.raises(ValidationError) as exc:
        clinical_event_record(patient=patient, recorded_by=nurse,
                              onset_date=timezone.localdate() + timedelta(days=offset), **fields)
    assert message in " ".join(exc.value.message_dict[field])
    assert not ClinicalEvent.objects.exists()
