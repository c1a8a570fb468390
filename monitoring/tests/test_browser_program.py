"""Browser, issue #16: a nurse records the education, a dispensing and a check-in that
raises an ILD review to the prescriber, and prints the handout; the prescriber sees the
review. Screenshots (and the printed handout as a PDF) are saved in test-artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import ClinicSettings, RequirementVersion
from monitoring.services import patient_schedule_recompute
from patients.tests.factories import clinic_ranges, started_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_education_dispensing_check_in_and_handout(login_browser, live_server, clinic_a, nurse, prescriber, artifacts):
    clinic_ranges(clinic_a)
    ClinicSettings.objects.update_or_create(clinic=clinic_a, defaults={"patient_phone": "+44 20 7946 0018"})
    RequirementVersion.objects.filter(requirement__code="checkin").update(effective_from=timezone.localdate() - timedelta(days=400))
    patient = started_patient(clinic_a, prescriber, mrn="A-160", first_name="Ines", last_name="Moreau", days_ago=9)
    patient_schedule_recompute(patient_id=patient.pk)
    base = f"{live_server.url}/monitoring/patients/{patient.pk}/program/"

    page = login_browser(nurse)
    page.goto(f"{live_server.url}/")
    assert "no education recorded" in page.get_by_test_id("education").inner_text()
    assert "A-160" in page.get_by_test_id("overdue").inner_text(), "the day-7 check-in is overdue on day 9"
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Education, supply, check-ins and adherence").click()
    assert "No education recorded" in page.get_by_test_id("education-missing").inner_text()

    # Education: every topic, with its source; one left out is refused and nothing is saved.
    page.get_by_role("link", name="Record education").click()
    assert "4 capsules of 150 mg" in page.locator("main").inner_text()
    assert "follow the pharmacy's leaflet" in page.locator("main").inner_text()
    boxes = page.locator("input[name=topics]")
    for i in range(boxes.count() - 1):
        boxes.nth(i).check()
    page.get_by_role("button", name="Record education").click()
    assert "not ticked: Storage" in page.locator("main").inner_text()
    page.locator("#topic-storage").check()
    page.fill("#id_with_whom", "the patient and her daughter")
    page.screenshot(path=str(artifacts / "program-education.png"), full_page=True)
    page.get_by_role("button", name="Record education").click()
    assert "with the patient and her daughter, at 600 mg twice daily" in page.get_by_test_id("education-last").inner_text()

    _dispensing_and_check_in(page, artifacts)
    _handout(page, artifacts)

    # The prescriber: the review waits on the patient page and on the worklist.
    page.context.clear_cookies()
    page = login_browser(prescriber)
    page.goto(f"{live_server.url}/")
    assert "A-160" in page.get_by_test_id("pending-recommendations").inner_text()
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    rec = page.get_by_test_id("recommendation").inner_text()
    assert "investigate promptly for ILD" in rec and "Reference §4.2" in rec
    page.screenshot(path=str(artifacts / "program-ild-review.png"), full_page=True)
    assert base  # the program page's address, for the reader


def _dispensing_and_check_in(page, artifacts):
    # A dispensing of 112 capsules on day 0: 14 days at 4 capsules twice daily.
    page.get_by_role("link", name="Record dispensing").click()
    page.fill("#id_dispensed_on", (timezone.localdate() - timedelta(days=9)).isoformat())
    page.fill("#id_capsules", "112")
    page.get_by_role("button", name="Record dispensing").click()
    assert page.get_by_test_id("on-hand").inner_text() == "32 × 150 mg"
    runs_out = timezone.localdate() + timedelta(days=5)
    assert runs_out.strftime("%-d %b %Y") in page.get_by_test_id("runs-out").inner_text()

    # A check-in: new breathlessness goes to a prescriber as "investigate for ILD" (§4.2).
    page.get_by_role("link", name="Record check-in").click()
    page.get_by_label("Phone").check()
    page.select_option("#id_symptom_dyspnea", "2")
    page.get_by_label("Breathlessness or cough is new or worse").check()
    page.fill("#id_missed_doses", "1")
    page.fill("#id_missed_reason", "forgot the evening dose")
    page.fill("#id_plan", "Chest X-ray today; prescriber informed.")
    page.screenshot(path=str(artifacts / "program-check-in.png"), full_page=True)
    page.get_by_role("button", name="Record check-in").click()
    finding = page.get_by_test_id("finding").first.inner_text()
    assert "investigate promptly for ILD" in finding and "Reference §4.2" in finding
    assert page.get_by_test_id("adherence-chart").is_visible()
    page.screenshot(path=str(artifacts / "program-overview.png"), full_page=True)


def _handout(page, artifacts):
    # The handout: her dose, her capsules, the clinic's number; printed.
    page.get_by_test_id("handout-link").click()
    assert "600 mg twice a day: 4 capsules of 150 mg each time." in page.get_by_test_id("handout-dose").inner_text()
    assert "+44 20 7946 0018" in page.get_by_test_id("handout-phone").inner_text()
    page.screenshot(path=str(artifacts / "program-handout.png"), full_page=True)
    page.emulate_media(media="print")
    page.pdf(path=str(artifacts / "program-handout.pdf"))
    assert (artifacts / "program-handout.pdf").stat().st_size > 1000
