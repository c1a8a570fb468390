"""Browser: a nurse enters a lab panel and sees the grade appear (screenshot saved)."""

import pytest
from django.utils import timezone

from patients.tests.factories import clinic_ranges, started_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_nurse_enters_a_lab_panel_and_sees_the_grade(login_browser, live_server, clinic_a, nurse, prescriber, artifacts):
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber, mrn="A-100", first_name="Lea", last_name="Berg")
    page = login_browser(nurse)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Enter lab panel").click()
    page.fill("#id_collected_at", timezone.localtime().strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("ALT", exact=True).fill("250")
    page.get_by_label("AST", exact=True).fill("90")
    page.get_by_label("Total bilirubin", exact=True).fill("0.8")
    page.get_by_label("CPK", exact=True).fill("900")
    page.screenshot(path=str(artifacts / "lab-panel-form.png"), full_page=True)
    page.get_by_role("button", name="Save panel").click()
    page.wait_for_url(f"**/patients/{patient.pk}/")
    alt_cell = page.locator("[data-testid=labs] td[data-analyte=alt]").first
    assert "G3" in alt_cell.inner_text() and "6.25×" in alt_cell.inner_text()
    assert "G3" in page.locator("[data-testid=labs] td[data-analyte=cpk]").first.inner_text()  # 5.29× ULN (§8.3)
    assert "grade 3" in page.get_by_role("alert").inner_text()
    page.screenshot(path=str(artifacts / "lab-panel-graded.png"), full_page=True)
