"""The one intake path (issue #15): every sent row is created, skipped as a duplicate,
turned into an amendment, or refused with its field and reason; nothing is written by the
dry run; an imported result is graded and followed up exactly as a typed one."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import ClinicFactory, UserFactory
from patients import intake
from patients.intake import Outcome, Sent
from patients.models import AnalyteAlias, LabResult, Recommendation
from patients.tests.factories import PatientFactory, ReferenceRangeFactory, TreatmentCourseFactory
from protocols.analytes import ANALYTES
from protocols.dosing import DoseState

pytestmark = pytest.mark.django_db
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=LONDON)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def clinic():
    c = ClinicFactory(timezone="Europe/London")
    for analyte, uln in (("alt", "40"), ("ast", "40"), ("total_bilirubin", "1.2"), ("creatinine", "1.1"), ("cpk", "200")):
        ReferenceRangeFactory(clinic=c, analyte=analyte, uln=Decimal(uln))
    return c


@pytest.fixture
def patient(clinic):
    p = PatientFactory(clinic=clinic, mrn="A100")
    TreatmentCourseFactory(patient=p, dose_state=DoseState.ON_DRUG, dose_mg_bid=600)
    return p


@pytest.fixture
def nurse(clinic):
    return UserFactory()


def row(line=2, mrn="A100", test="1742-6", value="35", unit="U/L", at="2026-11-20 09:15", **kw):
    return Sent(line=line, mrn=mrn, test=test, value=value, unit=unit, collected_at=at, **kw)


REFUSALS = [
    # (what is wrong, the row, the field named)
    ("empty MRN", row(mrn=""), "mrn"),
    ("unknown MRN", row(mrn="Z999"), "mrn"),
    ("unknown LOINC code", row(test="9999-9", system="LN"), "test"),
    ("unknown local name", row(test="GPT-ish"), "test"),
    ("unknown unit", row(unit="mmol/h"), "unit"),
    ("impossible value", row(value="25000"), "value"),
    ("negative value", row(value="-3"), "value"),
    ("not a number", row(value="pending"), "value"),
    ("NaN", row(value="NaN"), "value"),
    ("ambiguous comma", row(value="1,500"), "value"),
    ("future time", row(at="2026-11-23 09:00"), "collected_at"),
    ("year 1900", row(at="1900-01-01 09:00"), "collected_at"),
    ("not ISO", row(at="03/04/2025 10:00"), "collected_at"),
    ("no time of day", row(at="2026-11-20"), "collected_at"),
    ("day/month/year without a time", row(at="20/11/2026"), "collected_at"),
    ("impossible date", row(at="2026-02-30 10:00"), "collected_at"),
    ("backwards range", row(range="40-10"), "range"),
    ("absurd ULN", row(range="0-100000"), "range"),
    ("empty value", row(value=""), "value"),
    ("no unit where units differ", row(unit=""), "unit"),
    ("space-less bound with a bad number", row(value="<abc"), "value"),
]


@pytest.mark.parametrize(("what", "sent", "field"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_field_and_write_nothing(clinic, patient, nurse, what, sent, field):
    [verdict] = intake.check(clinic, [sent])
    assert verdict.outcome is Outcome.REFUSE, what
    assert verdict.field == field, verdict.reason
    assert verdict.reason and verdict.line == 2
    intake.commit([verdict], user=nurse, source=LabResult.Source.CSV)
    assert not LabResult.objects.exists()


def test_loinc_ucum_and_conversion_without_rounding(clinic, patient, nurse):
    # 61.5 µmol/L bilirubin with a ULN of 20.5 µmol/L is exactly 3.0 x ULN (not above).
    sent = [row(test="14631-6", value="61.5", unit="umol/L", range="3.4-20.5"),
            row(line=3, test="2160-0", value="1,3", unit="mg/dL")]
    verdicts = intake.check(clinic, sent)
    assert [v.outcome for v in verdicts] == [Outcome.CREATE, Outcome.CREATE]
    intake.commit(verdicts, user=nurse, source=LabResult.Source.CSV)
    bili = LabResult.objects.get(analyte="total_bilirubin")
    assert bili.x_uln == Decimal("3.000") and bili.reported_unit == "µmol/L" and bili.source == "csv"
    assert LabResult.objects.get(analyte="creatinine").reported_value == Decimal("1.3")


def test_clinic_local_names_are_matched_after_loinc(clinic, patient, nurse):
    AnalyteAlias.objects.create(clinic=clinic, name="Leberwert 1", analyte="alt", created_by=nurse)
    [by_alias, by_label] = intake.check(clinic, [row(test="LEBERWERT-1"), row(line=3, test="SGOT", at="2026-11-20 09:16")])
    assert (by_alias.outcome, by_alias.analyte) == (Outcome.CREATE, "alt")
    assert (by_label.outcome, by_label.analyte) == (Outcome.CREATE, "ast")
    other = ClinicFactory()
    PatientFactory(clinic=other, mrn="A100")
    [elsewhere] = intake.check(other, [row(test="Leberwert 1")])
    assert elsewhere.outcome is Outcome.REFUSE and elsewhere.field == "test"


def test_same_rows_twice_create_nothing_new(clinic, patient, nurse):
    sent = [row(), row(line=3, test="1920-8", value="50")]
    intake.commit(intake.check(clinic, sent), user=nurse, source=LabResult.Source.CSV)
    assert LabResult.objects.count() == 2
    again = intake.check(clinic, sent)
    assert [v.outcome for v in again] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    intake.commit(again, user=nurse, source=LabResult.Source.CSV)
    assert LabResult.objects.count() == 2


def test_duplicate_within_one_file_and_conflict(clinic, patient):
    verdicts = intake.check(clinic, [row(), row(line=3), row(line=4, value="36")])
    assert [v.outcome for v in verdicts] == [Outcome.CREATE, Outcome.DUPLICATE, Outcome.REFUSE]
    assert "line 2" in verdicts[1].reason and "line 2" in verdicts[2].reason


def test_same_value_in_another_unit_is_a_duplicate(clinic, patient, nurse):
    intake.commit(intake.check(clinic, [row(test="2157-6", value="120", unit="U/L")]), user=nurse, source="csv")
    [again] = intake.check(clinic, [row(test="2157-6", value="2", unit="ukat/L")])
    assert again.outcome is Outcome.DUPLICATE


def test_different_value_without_correction_is_refused_and_correction_amends(clinic, patient, nurse):
    intake.commit(intake.check(clinic, [row()]), user=nurse, source="hl7")
    [changed] = intake.check(clinic, [row(value="300")])
    assert changed.outcome is Outcome.REFUSE and "correction" in changed.reason
    [corrected] = intake.check(clinic, [row(value="300", corrected=True, reason="haemolysed sample re-run")])
    assert corrected.outcome is Outcome.AMEND
    intake.commit([corrected], user=nurse, source="hl7")
    old, new = LabResult.every.order_by("pk")
    assert old.status == LabResult.Status.AMENDED and "haemolysed sample re-run" in old.retired_reason
    assert new.amends == old and new.reported_value == Decimal("300") and new.source == "hl7"
    assert new.grade == 3  # 300 / 40 = 7.5 x ULN: grade 3 (CTCAE v5.0, §8.1)


def test_censored_value_is_stored_as_a_bound(clinic, patient, nurse):
    intake.commit(intake.check(clinic, [row(test="1975-2", value="<0.1", unit="mg/dL")]), user=nurse, source="csv")
    lab = LabResult.objects.get()
    assert (lab.comparator, lab.reported_value) == ("<", Decimal("0.1"))
    assert str(lab) == "Total bilirubin <0.1 mg/dL"
    assert "censored" in lab.grade_basis
    from patients.templatetags.clinical import bound, measured

    assert (measured(lab), bound(lab)) == ("<0.1", "≤")
    [again] = intake.check(clinic, [row(test="1975-2", value="0.1", unit="mg/dL")])
    assert again.outcome is Outcome.REFUSE  # 0.1 is not "<0.1"


def test_imported_result_runs_the_engine_like_a_typed_one(clinic, patient, nurse):
    # ALT 7.5 x ULN (grade 3): the label says withhold (§4.1); a pending recommendation appears.
    intake.commit(intake.check(clinic, [row(value="300")]), user=nurse, source="csv")
    lab = LabResult.objects.get()
    assert lab.grade == 3 and lab.history.first().history_user == nurse
    assert Recommendation.objects.filter(course__patient=patient, status="pending").exists()


def test_dry_run_writes_nothing(clinic, patient, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        verdicts = intake.check(clinic, [row(line=n, at=f"2026-11-{n:02d} 09:00") for n in range(1, 21)])
    assert all(v.outcome is Outcome.CREATE for v in verdicts)
    assert not LabResult.objects.exists()


def test_date_formats_are_only_those_chosen(clinic, patient):
    dmy = intake.Options(date_format="dmy")
    [v] = intake.check(clinic, [row(at="03/04/2025 10:00")], options=dmy)
    assert v.collected_at == datetime(2025, 4, 3, 10, 0, tzinfo=LONDON)
    [v] = intake.check(clinic, [row(at="03/04/2025 10:00")], options=intake.Options(date_format="mdy"))
    assert v.collected_at == datetime(2025, 3, 4, 10, 0, tzinfo=LONDON)


# --- Random rows never crash the intake nor save anything invalid (hypothesis) ---------------

_junk = st.text(max_size=15)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.builds(
    Sent, line=st.integers(1, 10**6), mrn=st.sampled_from(["A100", "", "Z9"]) | _junk,
    test=st.sampled_from(["1742-6", "14631-6", "718-7", "ALT", "sgpt", "9999-9"]) | _junk,
    value=st.sampled_from(["35", "<0.1", ">2000", "1,5", "-1", "NaN", "1e999", "pending", ""]) | _junk,
    unit=st.sampled_from(["U/L", "umol/L", "g/L", "mg/dL", "ukat/L", ""]) | _junk,
    collected_at=st.sampled_from(["2026-11-20 09:15", "2026-11-20T09:15:00Z", "2099-01-01 00:00", "1899-12-31 23:00",
                                  "2026-02-30 10:00", ""]) | _junk,
    range=st.sampled_from(["5-40", "<40", "40-5", "0-1e9", ""]) | _junk,
    corrected=st.booleans()), max_size=6))
def test_random_rows_never_crash_nor_save_anything_invalid(clinic, patient, nurse, rows):
    verdicts = intake.check(clinic, rows)
    assert len(verdicts) == len(rows)
    assert all(v.outcome is Outcome.REFUSE and v.field and v.reason or v.outcome is not Outcome.REFUSE
               for v in verdicts)
    intake.commit(verdicts, user=nurse, source=LabResult.Source.CSV)
    for lab in LabResult.objects.all():
        a = ANALYTES[lab.analyte]
        assert a.minimum <= lab.value <= a.maximum and lab.collected_at <= NOW
        assert lab.patient == patient


def test_an_alias_never_overrides_the_apps_own_names(clinic, patient, nurse):
    AnalyteAlias.objects.create(clinic=clinic, name="ALT", analyte="ast", created_by=nurse)  # e.g. from before
    [v] = intake.check(clinic, [row(test="ALT")])
    assert v.analyte == "alt"


def test_iso_with_a_space_before_the_offset_is_read(clinic, patient):
    [v] = intake.check(clinic, [row(at="2026-11-20 09:15 +01:00")])
    assert v.outcome is Outcome.CREATE and v.collected_at.utcoffset().total_seconds() == 3600
    [v] = intake.check(clinic, [row(at="2026-11-20")])
    assert "no time of day" in v.reason


@pytest.mark.parametrize(("at", "problem"), [("2026-10-25 01:30", "happens twice"),
                                              ("2026-03-29 01:30", "does not exist")])
def test_a_local_time_the_clock_change_makes_ambiguous_is_refused(clinic, patient, at, problem):
    [v] = intake.check(clinic, [row(at=at)])
    assert v.outcome is Outcome.REFUSE and v.field == "collected_at" and problem in v.reason
    [v] = intake.check(clinic, [row(at=at.replace(" ", "T") + "+01:00" if "10-25" in at else at + "+00:00")])
    assert v.outcome is Outcome.CREATE
