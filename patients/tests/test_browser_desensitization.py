"""Browser: a prescriber starts the Seegobin protocol for a demo patient; the nurse
records three days and a reaction; the plan pauses (screenshot saved)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def a_day_passes(plan):
    """Move the plan one day into the past: the browser test cannot wait for tomorrow."""
    plan.days.update(date=F("date") - timedelta(days=1))
    type(plan).objects.filter(pk=plan.pk).update(start_date=F("start_date") - timedelta(days=1))


def test_seegobin_plan_three_days_and_a_reaction(login_browser, live_server, artifacts):
    from accounts.models import User
    from patients.models import DesensitizationPlan, Patient

    call_command("load_demo", verbosity=0)
    patient = Patient.objects.get(mrn="N1019")  # the demo patient whose grade 3 rash resolved
    prescriber, nurse = User.objects.get(username="prescriber.north"), User.objects.get(username="nurse.north")

    page = login_browser(prescriber)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Desensitization plan").click()
    page.get_by_label("Protocol").select_option(label="Seegobin 2020 (full dose, outpatient)")
    page.get_by_label("The rash it follows").select_option(index=1)
    page.get_by_role("button", name="Preview").click()
    assert page.get_by_test_id("plan-preview").locator("tbody tr").count() == 23
    assert "4 × 150 mg" in page.get_by_test_id("plan-preview").inner_text()
    page.screenshot(path=str(artifacts / "desensitization-preview.png"), full_page=True)
    page.get_by_role("button", name="Approve and start the plan").click()
    assert "Running" in page.get_by_test_id("plan-status").inner_text()
    plan = DesensitizationPlan.objects.get(course__patient=patient)

    page.context.clear_cookies()
    page = login_browser(nurse)
    plan_url = f"{live_server.url}/patients/{patient.pk}/desensitization/{plan.pk}/"
    for n in (1, 2, 3):
        if n < 3:  # days 1 and 2 are recorded the day after: both doses are known by then
            a_day_passes(plan)
        page.goto(plan_url)
        # Nothing is pre-chosen: a dose is unknown until recorded (issue 8).
        assert not page.get_by_label("Morning dose taken").is_checked()
        page.get_by_label("Morning dose taken").check()
        if n == 3:  # today, whatever the hour: a reaction can be recorded before the evening dose
            page.get_by_label("Reaction (rash, fever, mucosal symptoms)").check()
            page.get_by_label("Reaction grade (CTCAE)").select_option("2")
            page.get_by_label("Note").fill("Pruritic macules on the forearms")
        else:
            page.get_by_label("Evening dose taken").check()
        page.get_by_role("button", name=f"Record day {n}").click()
    paused = page.get_by_test_id("plan-paused").inner_text()
    assert "Reaction (grade 2) on day 3, step 2" in paused
    assert "Paused" in page.get_by_test_id("plan-status").inner_text()
    assert "Waiting for a prescriber" in page.content()
    assert "There is no automatic step-down" in page.get_by_test_id("pause-guidance").inner_text()
    assert "missed dose" not in page.get_by_test_id("pause-guidance").inner_text()
    page.screenshot(path=str(artifacts / "desensitization-paused.png"), full_page=True)

    page.goto(live_server.url + "/")
    assert "paused — prescriber decides" in page.get_by_test_id("plans").inner_text()
