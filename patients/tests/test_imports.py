"""CSV and FHIR imports through the pages (issue #15; reliability.md I1–I4): upload,
columns, dry run, confirmation, the summary; real files from tests/data."""

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.tests.factories import MembershipFactory
from patients import imports, tasks
from patients.models import AnalyteAlias, ImportMapping, LabImport, LabResult
from patients.tests.factories import PatientFactory, ReferenceRangeFactory, TreatmentCourseFactory
from protocols.dosing import DoseState

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("Europe/London"))


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patients(clinic_a):
    for analyte, uln in (("alt", "40"), ("ast", "40"), ("total_bilirubin", "1.2"), ("creatinine", "1.1"), ("cpk", "200")):
        ReferenceRangeFactory(clinic=clinic_a, analyte=analyte, uln=Decimal(uln))
    made = []
    for mrn in ("A100", "A101"):
        p = PatientFactory(clinic=clinic_a, mrn=mrn)
        TreatmentCourseFactory(patient=p, dose_state=DoseState.ON_DRUG, dose_mg_bid=600, start_date=date(2026, 9, 1))
        made.append(p)
    return made


def upload(client, name, clinic, content=None):
    content = (DATA / name).read_bytes() if content is None else content
    response = client.post(reverse("import_list"), {"clinic": clinic.pk, "file": SimpleUploadedFile(name, content)})
    assert response.status_code == 302, response.content[:500]
    return LabImport.objects.latest("pk")


def mapping_post(imp, **overrides):
    tab = imports.table(imp)
    chosen = imports.remembered_mapping(imp, tab)
    data = {f"col_{k}": "" if v is None else str(v) for k, v in chosen.items()}
    data["date_format"] = "iso"
    data.update(overrides)
    return data


def check(client, imp, **overrides):
    response = client.post(reverse("import_check", args=[imp.pk]), mapping_post(imp, **overrides))
    assert response.status_code == 302, response.content.decode()[:2000]
    imp.refresh_from_db()
    return imp


def test_good_file_dry_run_then_confirm_then_again_nothing_new(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = upload(client, "good.csv", clinic_a)
    page = client.get(reverse("import_detail", args=[imp.pk])).content.decode()
    assert "Which column holds what" in page and "6 rows" in page
    imp = check(client, imp)
    assert imp.state == LabImport.State.CHECKED
    assert imp.counts == {"create": 6, "duplicate": 0, "amend": 0, "refuse": 0}
    assert not LabResult.objects.exists()  # the dry run saved nothing
    page = client.get(reverse("import_detail", args=[imp.pk])).content.decode()
    assert "Save 6 results" in page
    client.post(reverse("import_confirm", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.state == LabImport.State.DONE and LabResult.objects.count() == 6
    assert set(LabResult.objects.values_list("lab_import", flat=True)) == {imp.pk}
    assert set(LabResult.objects.values_list("source", flat=True)) == {"csv"}
    # A second confirmation saves nothing again.
    client.post(reverse("import_confirm", args=[imp.pk]))
    assert LabResult.objects.count() == 6
    # The same file again: said so, and every row is a duplicate.
    again = upload(client, "good.csv", clinic_a)
    assert "was imported into this clinic before" in client.get(reverse("import_detail", args=[again.pk])).content.decode()
    again = check(client, again)
    assert again.counts["duplicate"] == 6 and again.counts["create"] == 0
    client.post(reverse("import_confirm", args=[again.pk]))
    assert LabResult.objects.count() == 6


def test_every_kind_of_bad_row_is_listed_with_line_field_and_reason(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = check(client, upload(client, "bad_rows.csv", clinic_a))
    by_line = {row[0]: row for row in imp.outcomes}
    expected = {
        2: ("create", ""), 3: ("refuse", "mrn"), 4: ("refuse", "mrn"), 5: ("refuse", "test"), 6: ("refuse", "test"),
        7: ("refuse", "unit"), 8: ("refuse", "value"), 9: ("refuse", "value"), 10: ("refuse", "value"),
        11: ("refuse", "value"), 12: ("refuse", "collected_at"), 13: ("refuse", "collected_at"),
        14: ("refuse", "collected_at"), 15: ("refuse", "collected_at"), 16: ("refuse", "range"),
        17: ("refuse", "status"), 18: ("refuse", "row"), 19: ("refuse", "value"), 20: ("refuse", "row"),
        21: ("refuse", "value"),
    }
    assert {line: (row[1], row[2]) for line, row in by_line.items()} == expected
    assert all(row[3] for row in imp.outcomes if row[1] == "refuse")
    page = client.get(reverse("import_detail", args=[imp.pk]) + "?show=refuse").content.decode()
    assert "No patient with MRN" in page and "SGPT-X" in page and "Line 18 has 6 columns" in page
    client.post(reverse("import_confirm", args=[imp.pk]))
    assert LabResult.objects.count() == 1  # only the valid row
    summary = b"".join(client.get(reverse("import_summary", args=[imp.pk])).streaming_content).decode()
    assert summary.startswith("line,outcome,field,reason,mrn,test")
    assert "'=HYPERLINK" not in summary or "=HYPERLINK" not in summary.replace("'=HYPERLINK", "")


@pytest.mark.parametrize(("name", "message"), [
    ("empty.csv", "The file is empty."),
    ("not_a_csv.xlsx", "This is not a CSV file"),
    ("one_column.csv", "single column"),
])
def test_a_file_that_is_not_a_table_is_refused_whole(client, nurse, clinic_a, patients, name, message):
    client.force_login(nurse)
    content = (DATA / name).read_bytes()
    response = client.post(reverse("import_list"), {"clinic": clinic_a.pk, "file": SimpleUploadedFile(name, content)})
    if response.status_code == 200:  # refused by the upload form (an empty file)
        assert message in response.content.decode()
        return
    imp = LabImport.objects.latest("pk")
    page = client.get(reverse("import_detail", args=[imp.pk])).content.decode()
    assert message in page
    response = client.post(reverse("import_check", args=[imp.pk]), {"date_format": "iso"})
    assert not LabResult.objects.exists()


def test_bom_semicolons_decimal_commas_and_a_chosen_date_format(client, nurse, clinic_admin, clinic_a, patients):
    client.force_login(nurse)
    imp = upload(client, "bom_semicolon_dmy.csv", clinic_a)
    imp = check(client, imp)
    assert [(r[1], r[2]) for r in imp.outcomes] == [("refuse", "collected_at"), ("refuse", "test")]
    assert "choose its date format" in imp.outcomes[0][3]
    imp = check(client, imp, date_format="dmy")
    assert [r[1] for r in imp.outcomes] == ["create", "refuse"]  # "Créatinine sérique" is not known yet
    assert imp.outcomes[0][7] == "2026-11-20 09:15 GMT" and imp.outcomes[0][6] == "35.5 U/L"  # as read, shown
    teach = {"clinic": clinic_a.pk, "import": imp.pk, "alias-name": "Créatinine sérique", "alias-analyte": "creatinine"}
    assert client.post(reverse("test_names"), teach).status_code == 403  # a nurse asks the clinic admin
    client.force_login(clinic_admin)
    client.post(reverse("test_names"), teach)
    assert AnalyteAlias.objects.filter(clinic=clinic_a, analyte="creatinine").exists()
    client.force_login(nurse)
    imp = check(client, imp, date_format="dmy")
    assert [r[1] for r in imp.outcomes] == ["create", "create"]
    client.post(reverse("import_confirm", args=[imp.pk]))
    alt = LabResult.objects.get(analyte="alt")
    assert alt.reported_value == Decimal("35.5") and alt.collected_at == datetime(2026, 11, 20, 9, 15, tzinfo=ZoneInfo("Europe/London"))


def test_latin1_and_a_censored_value(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = upload(client, "latin1_semicolon.csv", clinic_a)
    page = client.get(reverse("import_detail", args=[imp.pk])).content.decode()
    assert "Latin-1" in page and "Prélevé le" in page
    imp = check(client, imp, col_value="2", col_unit="3", col_collected_at="4")  # the user names the columns
    assert imp.counts["create"] == 2
    client.post(reverse("import_confirm", args=[imp.pk]))
    bili = LabResult.objects.get(analyte="total_bilirubin")
    assert (bili.comparator, bili.reported_value) == ("<", Decimal("0.1"))


def test_the_mapping_is_remembered_for_the_same_header(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = upload(client, "good.csv", clinic_a)
    data = mapping_post(imp)
    data["col_range"] = ""  # the user leaves the range out
    client.post(reverse("import_check", args=[imp.pk]), data)
    assert ImportMapping.objects.get(clinic=clinic_a).mapping["range"] is None
    second = upload(client, "good.csv", clinic_a)
    assert imports.remembered_mapping(second, imports.table(second))["range"] is None


def test_a_mapping_without_the_required_columns_is_refused(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = upload(client, "good.csv", clinic_a)
    response = client.post(reverse("import_check", args=[imp.pk]), mapping_post(imp, col_mrn="", col_value="0"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required" in body or "Choose the column" in body
    imp.refresh_from_db()
    assert imp.state == LabImport.State.RECEIVED


def test_fhir_bundle_through_the_same_dry_run(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = upload(client, "fhir_bundle_good.json", clinic_a)
    assert imp.kind == LabImport.Kind.FHIR
    client.post(reverse("import_check", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.counts == {"create": 4, "duplicate": 0, "amend": 0, "refuse": 0}, imp.outcomes
    client.post(reverse("import_confirm", args=[imp.pk]))
    bili = LabResult.objects.get(analyte="total_bilirubin", comparator="")
    assert bili.x_uln == Decimal("3.000")  # 61.5 / 20.5 µmol/L, exactly 3 x ULN
    assert LabResult.objects.get(analyte="creatinine").patient.mrn == "A101"  # by the Patient in the Bundle
    assert set(LabResult.objects.values_list("source", flat=True)) == {"fhir"}


def test_fhir_bad_entries_are_refused_one_by_one(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = upload(client, "fhir_bundle_bad_entries.json", clinic_a)
    client.post(reverse("import_check", args=[imp.pk]))
    imp.refresh_from_db()
    assert [(r[1], r[2]) for r in imp.outcomes] == [
        ("create", ""), ("refuse", "status"), ("refuse", "collected_at"), ("refuse", "mrn"), ("refuse", "entry"),
        ("refuse", "entry"), ("refuse", "unit")]


def test_cancel_saves_nothing(client, nurse, clinic_a, patients):
    client.force_login(nurse)
    imp = check(client, upload(client, "good.csv", clinic_a))
    client.post(reverse("import_cancel", args=[imp.pk]))
    client.post(reverse("import_confirm", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.state == LabImport.State.CANCELLED and not LabResult.objects.exists()


def test_a_large_file_runs_in_the_background_with_progress(client, nurse, clinic_a, patients, settings,
                                                           django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(imports, "SYNC_ROWS", 3)  # good.csv has 6 rows: above the limit
    queued = []
    monkeypatch.setattr(tasks.run_lab_import, "delay", lambda *args: queued.append(args))
    client.force_login(nurse)
    imp = upload(client, "good.csv", clinic_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("import_check", args=[imp.pk]), mapping_post(imp))
    imp.refresh_from_db()
    assert imp.state == LabImport.State.CHECKING and queued == [(imp.pk, "check")]
    fragment = client.get(reverse("import_progress", args=[imp.pk]), headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in fragment.content.decode()
    tasks.run_lab_import(*queued.pop())  # the worker's part, run here
    imp.refresh_from_db()
    assert imp.state == LabImport.State.CHECKED and imp.counts["create"] == 6
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("import_confirm", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.state == LabImport.State.COMMITTING and queued == [(imp.pk, "commit")]
    args = queued.pop()
    tasks.run_lab_import(*args)
    tasks.run_lab_import(*args)  # redelivered: nothing happens twice
    imp.refresh_from_db()
    assert imp.state == LabImport.State.DONE and LabResult.objects.count() == 6
    fragment = client.get(reverse("import_progress", args=[imp.pk]), headers={"HX-Request": "true"})
    assert fragment["HX-Refresh"] == "true"


ROLE_MATRIX = [("nurse", 200), ("prescriber", 200), ("clinic_admin", 200), ("staff", 403), ("outsider", 404)]


@pytest.mark.parametrize(("persona", "status"), ROLE_MATRIX)
def test_import_pages_refuse_other_clinics_and_the_wrong_role(client, request, clinic_a, nurse, patients, persona,
                                                              status):
    imp = imports.lab_import_receive(clinic=clinic_a, kind="csv", name="good.csv",
                                     content=(DATA / "good.csv").read_bytes(), user=nurse)
    user = request.getfixturevalue(persona)
    client.force_login(user)
    for name in ("import_detail", "import_progress", "import_summary"):
        assert client.get(reverse(name, args=[imp.pk])).status_code == status, name
    for name in ("import_check", "import_confirm", "import_cancel"):
        response = client.post(reverse(name, args=[imp.pk]), mapping_post(imp))
        assert response.status_code == (302 if status == 200 else status), name
    imp.refresh_from_db()
    if status != 200:
        assert imp.state == LabImport.State.RECEIVED and not LabResult.objects.exists()
    list_status = 403 if persona == "staff" else 200
    assert client.get(reverse("import_list")).status_code == list_status


def test_anonymous_users_are_sent_to_sign_in(client, clinic_a, nurse):
    imp = imports.lab_import_receive(clinic=clinic_a, kind="csv", name="x.csv", content=b"a,b\n1,2\n", user=nurse)
    for url in (reverse("import_list"), reverse("import_detail", args=[imp.pk]), reverse("test_names"),
                reverse("hl7_messages")):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"]


def test_another_clinics_patient_is_an_unknown_mrn(client, outsider, clinic_b, patients):
    """A clinic B nurse importing clinic A's MRNs: refused as unknown, nothing revealed."""
    client.force_login(outsider)
    imp = check(client, upload(client, "good.csv", clinic_b))
    assert imp.counts["refuse"] == 6 and all(r[2] == "mrn" for r in imp.outcomes)


def test_importing_into_another_clinic_is_refused(client, nurse, clinic_b, patients):
    client.force_login(nurse)
    response = client.post(reverse("import_list"), {"clinic": clinic_b.pk,
                                                    "file": SimpleUploadedFile("good.csv", b"a,b\n1,2\n")})
    assert response.status_code == 200 and not LabImport.objects.exists()


def test_clinic_admin_of_two_clinics_sees_only_their_imports(client, clinic_a, clinic_b, nurse, outsider):
    mine = imports.lab_import_receive(clinic=clinic_a, kind="csv", name="mine.csv", content=b"a,b\n1,2\n", user=nurse)
    theirs = imports.lab_import_receive(clinic=clinic_b, kind="csv", name="theirs.csv", content=b"a,b\n1,2\n",
                                        user=outsider)
    client.force_login(nurse)
    page = client.get(reverse("import_list")).content.decode()
    assert "mine.csv" in page and "theirs.csv" not in page
    assert client.get(reverse("import_detail", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("import_detail", args=[mine.pk])).status_code == 200
    MembershipFactory(user=nurse, clinic=clinic_b, role="staff")
    assert client.get(reverse("import_detail", args=[theirs.pk])).status_code == 403


@pytest.mark.parametrize("name", ["ALT", "alt", "Total bilirubin", "1742-6", " 2160 - 0 ", "ＡＬＴ", "ALT\u200b", "A.L.T",
                                  "alt.", "LN:1742-6", "17426", "1742\u20116", "GPT", "SGOT", "CK"])
def test_the_apps_own_names_cannot_be_taught_as_another_test(client, clinic_admin, clinic_a, name):
    client.force_login(clinic_admin)
    response = client.post(reverse("test_names"), {"clinic": clinic_a.pk, "alias-name": name, "alias-analyte": "ast"})
    assert "is already the app" in response.content.decode() and not AnalyteAlias.objects.exists()


def test_a_clinic_admin_forgets_a_name_and_both_are_on_the_trail(client, clinic_admin, clinic_a):
    from accounts.models import AuditEvent

    client.force_login(clinic_admin)
    client.post(reverse("test_names"), {"clinic": clinic_a.pk, "alias-name": "Leberwert 1", "alias-analyte": "alt"})
    alias = AnalyteAlias.objects.get()
    client.post(reverse("test_names"), {"clinic": clinic_a.pk, "remove": alias.pk})
    assert not AnalyteAlias.objects.exists()
    whats = list(AuditEvent.objects.filter(clinic=clinic_a).values_list("what", flat=True))
    assert any("taught as ALT" in w for w in whats) and any("forgotten" in w for w in whats)
