"""Browser: ALT 6x ULN -> withhold recommendation -> accepted -> ALT 2x ULN -> resume at 450
-> accepted; the timeline shows 600 -> withheld -> 450 (screenshots saved)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from patients.tests.factories import clinic_ranges, started_patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def enter_alt(page, value, when):
    page.get_by_role("link", name="Enter lab panel").click()
    page.fill("#id_collected_at", when.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("ALT", exact=True).fill(value)
    page.get_by_label("Total bilirubin", exact=True).fill("0.7")
    page.get_by_role("button", name="Save panel").click()


def test_withhold_then_resume_at_450(login_browser, live_server, clinic_a, nurse, prescriber, artifacts):
    clinic_ranges(clinic_a)
    patient = started_patient(clinic_a, prescriber, mrn="A-200", first_name="Ines", last_name="Moreau", days_ago=50)
    url = f"{live_server.url}/patients/{patient.pk}/"
    now = timezone.localtime()

    page = login_browser(nurse)
    page.goto(url)
    enter_alt(page, "240", now - timedelta(hours=3))  # 6x ULN of 40
    rec = page.get_by_test_id("recommendation")
    assert "Withhold; resume at 450 mg twice daily" in rec.inner_text()
    assert "Waiting for a prescriber" in rec.inner_text()

    page.context.clear_cookies()
    page = login_browser(prescriber)
    page.goto(url)
    rec = page.get_by_test_id("recommendation")
    assert "H1" in rec.inner_text() and "Reference §4.1 H1" in rec.inner_text()
    page.screenshot(path=str(artifacts / "recommendation-withhold.png"), full_page=True)
    rec.get_by_role("button", name="Accept and record the dose change").click()
    assert page.get_by_test_id("dose-state").inner_text() == "Withheld (resume at 450 mg twice daily)"

    page.context.clear_cookies()
    page = login_browser(nurse)
    page.goto(url)
    enter_alt(page, "80", now - timedelta(minutes=5))  # 2x ULN: recovered
    assert "Resume at 450 mg twice daily" in page.get_by_test_id("recommendation").inner_text()

    page.context.clear_cookies()
    page = login_browser(prescriber)
    page.goto(url)
    page.get_by_test_id("recommendation").get_by_role("button", name="Accept and record the dose change").click()
    assert page.get_by_test_id("dose-state").inner_text() == "450 mg twice daily"
    timeline = page.get_by_test_id("dose-timeline").inner_text()
    assert "started at 600 mg twice daily" in timeline
    assert "600 mg twice daily → withheld (resume at 450 mg twice daily)" in timeline
    assert "withheld → 450 mg twice daily" in timeline
    assert timeline.count("accepted by Prescriber") == 2
    page.screenshot(path=str(artifacts / "recommendation-timeline.png"), full_page=True)
