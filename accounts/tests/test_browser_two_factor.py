"""Browser: a clinic admin signs in, is sent to set up two-step sign-in, scans (here: reads)
the key, enters the code and reaches the worklist (screenshot saved)."""

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_clinic_admin_sets_up_two_step_sign_in(page, live_server, clinic_admin, settings, artifacts):
    settings.OTP_REQUIRED_ROLES = ["admin"]
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", clinic_admin.username)
    page.fill("#id_password", "x-test-password-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/account/two-step/**")
    assert "requires two-step sign-in" in page.locator("main").inner_text()
    page.screenshot(path=str(artifacts / "two-step-setup.png"), full_page=True)
    device = TOTPDevice.objects.get(user=clinic_admin)
    page.fill("#id_token", f"{totp(device.bin_key):06d}")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert "Two-step sign-in is on" in page.locator("body").inner_text()
