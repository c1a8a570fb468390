"""Browser: a nurse imports the clinic's CSV export: upload, columns, the dry run, save;
then the patient's page shows the results, a censored one with its '<' (screenshots)."""

from pathlib import Path

import pytest

from patients.tests.factories import clinic_ranges, started_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DATA = Path(__file__).parent / "data"


def test_nurse_imports_a_csv_export(login_browser, live_server, clinic_a, nurse, prescriber, artifacts):
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber, mrn="A100", first_name="Lea", last_name="Berg")
    page = login_browser(nurse)
    page.goto(f"{live_server.url}/patients/imports/")
    page.set_input_files("#id_file", str(DATA / "latin1_semicolon.csv"))
    page.get_by_role("button", name="Upload and choose columns").click()
    page.get_by_label("Value").select_option(label="Valeur")
    page.get_by_label("Unit (optional)").select_option(label="Unité")
    page.get_by_label("Collected at").select_option(label="Prélevé le")
    page.screenshot(path=str(artifacts / "import-columns.png"), full_page=True)
    page.get_by_role("button", name="2. Check (dry run: nothing is saved)").click()
    counts = page.get_by_test_id("import-counts")
    assert "2 to create" in counts.inner_text()
    assert "<0.1 mg/dL" in page.get_by_role("table").last.inner_text()
    page.screenshot(path=str(artifacts / "import-dry-run.png"), full_page=True)
    page.get_by_role("button", name="Save 2 results").click()
    assert "2 created" in page.get_by_test_id("import-counts").inner_text()
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    bili = page.locator("[data-testid=labs] td[data-analyte=total_bilirubin]").first.inner_text()
    assert bili.startswith("<0.1")
    page.screenshot(path=str(artifacts / "import-patient-page.png"), full_page=True)
