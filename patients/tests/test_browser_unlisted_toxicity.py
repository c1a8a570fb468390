"""Browser, reference §4.7: a grade 3 toxicity the label has no rule for reaches the
prescriber as a review on the worklist; the prescriber marks it reviewed and the dose is
unchanged. And §9.3: SJS recorded on drug suggests discontinuation and marks the patient
as never to be re-challenged (screenshots saved)."""

import pytest
from django.utils import timezone

from patients.tests.factories import clinic_ranges, started_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def record_event(page, kind, grade, notes="", scar=None):
    page.get_by_role("link", name="Clinical event").click()
    page.select_option("#id_kind", kind)
    page.fill("#id_onset_date", timezone.localdate().isoformat())
    page.select_option("#id_grade", str(grade))
    if scar:
        page.select_option("#id_scar", scar)
    if notes:
        page.fill("#id_notes", notes)
    page.get_by_role("button", name="Record event").click()


def test_unlisted_grade_3_toxicity_reaches_the_prescriber(login_browser, live_server, clinic_a, nurse, prescriber, artifacts):
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber, mrn="A-470", first_name="Olga", last_name="Berg", days_ago=30)
    url = f"{live_server.url}/patients/{patient.pk}/"

    page = login_browser(nurse)
    page.goto(url)
    record_event(page, "other", 3, notes="Diarrhoea, 8 stools a day")
    rec = page.get_by_test_id("recommendation")
    assert "Prescriber review: the label has no rule" in rec.inner_text()
    assert "Waiting for a prescriber" in rec.inner_text()

    page.context.clear_cookies()
    page = login_browser(prescriber)
    page.goto(f"{live_server.url}/")
    worklist = page.locator("main").inner_text()
    assert "A-470" in worklist and "Prescriber review" in worklist
    page.screenshot(path=str(artifacts / "unlisted-toxicity-worklist.png"), full_page=True)
    page.goto(url)
    rec = page.get_by_test_id("recommendation")
    assert "Reference §4.7" in rec.inner_text() and "Grade 3 toxicity without a label rule (Diarrhoea, 8 stools a day)" in rec.inner_text()
    page.screenshot(path=str(artifacts / "unlisted-toxicity-review.png"), full_page=True)
    rec.get_by_role("button", name="Mark as reviewed (no dose change)").click()
    assert "Reviewed: no dose change" in page.locator("body").inner_text()
    assert page.get_by_test_id("dose-state").inner_text() == "600 mg twice daily"


def test_sjs_on_drug_suggests_discontinuation_and_never_rechallenge(login_browser, live_server, clinic_a, nurse, prescriber,
                                                                    artifacts):
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber, mrn="A-471", first_name="Pia", last_name="Lund", days_ago=20)
    url = f"{live_server.url}/patients/{patient.pk}/"
    page = login_browser(nurse)
    page.goto(url)
    record_event(page, "rash", 3, scar="sjs")
    assert "Discontinue alectinib permanently" in page.get_by_test_id("recommendation").inner_text()
    banner = page.get_by_test_id("never-rechallenge").inner_text()
    assert "Never re-challenge with alectinib" in banner and "Stevens-Johnson" in banner
    page.screenshot(path=str(artifacts / "scar-never-rechallenge.png"), full_page=True)
