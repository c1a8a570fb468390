"""Browser: the worklist, the cohort overview and a patient page on the demo cohort, at a
1280x800 laptop size and a tablet size; screenshots saved in test-artifacts/."""

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboards_on_the_demo_cohort(login_browser, live_server, artifacts):
    from accounts.models import User
    from patients.models import Patient

    call_command("load_demo", verbosity=0)
    page = login_browser(User.objects.get(username="nurse.north"))
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: console_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    # Worklist: sections with counts; an inline follow-up without a full reload (htmx).
    page.goto(live_server.url + "/")
    assert int(page.get_by_test_id("count-overdue").inner_text()) >= 3
    # The ALT result waiting for a prescriber, and the check-in that reported new breathlessness (issue #16).
    assert int(page.get_by_test_id("count-recs").inner_text()) == 2
    assert int(page.get_by_test_id("count-withheld").inner_text()) == 3
    page.screenshot(path=str(artifacts / "worklist.png"), full_page=True)
    page.evaluate("window.__marker = 'same page'")
    row = page.get_by_test_id("overdue").locator("tbody tr").first
    row.get_by_role("link", name="Ordered / contacted…").click()  # the form comes into the row (htmx)
    assert row.get_by_label("Follow-up").evaluate("el => el === document.activeElement")
    row.get_by_label("Why").fill("Phoned; bloods booked for Tuesday")
    row.get_by_role("button", name="Record").click()
    page.get_by_text("Recorded; snoozed until").wait_for()
    assert page.evaluate("window.__marker") == "same page"  # no full reload
    page.screenshot(path=str(artifacts / "worklist-follow-up.png"))
    second = page.get_by_test_id("overdue").locator("tbody tr").nth(1)
    second.get_by_role("link", name="Ordered / contacted…").click()
    second.get_by_role("button", name="Cancel").click()  # closes the form: the link again
    second.get_by_role("link", name="Ordered / contacted…").wait_for()
    assert second.locator("form").count() == 0

    # Cohort overview: charts drawn from the same numbers as the tables beside them.
    page.goto(live_server.url + "/cohort/")
    page.keyboard.press("Tab")  # keyboard: the first Tab reaches the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    values = page.evaluate("Chart.getChart('chart-now').data.datasets[0].data")
    table = [int(x) for x in page.get_by_test_id("chart-now").locator("tbody td.num").all_inner_texts()]
    assert values == table and sum(values) >= 19
    page.screenshot(path=str(artifacts / "cohort.png"), full_page=True)

    # Patient page: liver trend with the dose bands, for the patient reduced twice.
    patient = Patient.objects.get(mrn="N1015")
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    labels = page.evaluate("Chart.getChart('trend-liver').data.datasets.map(d => d.label)")
    assert labels == ["ALT", "AST", "Total bilirubin"]
    bands = page.evaluate("Object.keys(Chart.getChart('trend-liver').options.plugins.annotation.annotations)"
                          ".filter(k => k.startsWith('band')).length")
    assert bands == 5  # 600, withheld, 450, withheld, 300
    page.screenshot(path=str(artifacts / "patient-page.png"), full_page=True)
    assert not console_errors, console_errors  # e.g. a Content-Security-Policy violation

    # Tablet.
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto(live_server.url + "/")
    page.screenshot(path=str(artifacts / "worklist-tablet.png"), full_page=False)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.screenshot(path=str(artifacts / "patient-page-tablet.png"), full_page=False)


def test_a_session_that_expired_with_the_worklist_open_goes_to_the_sign_in_page(login_browser, live_server, nurse,
                                                                                 clinic_a):
    """htmx is told to navigate (HX-Redirect): the sign-in page does not land in the row."""
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.tests.factories import MonitoringItemFactory
    from patients.tests.factories import PatientFactory, TreatmentCourseFactory

    due = timezone.localdate() - timedelta(days=10)
    MonitoringItemFactory(course=TreatmentCourseFactory(patient=PatientFactory(clinic=clinic_a), on_drug=True),
                          due_date=due, overdue_from=due + timedelta(days=1))
    page = login_browser(nurse)
    page.goto(live_server.url + "/")
    page.context.clear_cookies()
    page.get_by_test_id("overdue").locator("tbody tr").first.get_by_role("link", name="Ordered / contacted…").click()
    page.wait_for_url("**/login/?next=/")
    assert page.get_by_label("Username").is_visible() and page.locator("table").count() == 0
