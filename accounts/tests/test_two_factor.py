"""Two-step sign-in (TOTP; reliability.md S12): optional for staff, required for clinic
admins; a user with a device verifies it after the password on every sign-in."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _required_for_admins(settings):
    settings.OTP_REQUIRED_ROLES = ["admin"]


def sign_in(client, user):
    assert client.post(reverse("login"), {"username": user.username, "password": "x-test-password-123"}).status_code == 302


def code(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def test_a_clinic_admin_without_a_device_must_set_one_up_before_any_page(client, clinic_admin):
    sign_in(client, clinic_admin)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("two_factor_setup"))
    assert client.get(reverse("admin:index")).status_code == 302
    page = client.get(reverse("two_factor_setup")).content.decode()
    assert "requires two-step sign-in" in page and "<svg" in page
    secret = re.search(r'data-testid="secret">([A-Z2-7 ]+)<', page).group(1)
    device = TOTPDevice.objects.get(user=clinic_admin, confirmed=False)
    assert secret.replace(" ", "") in device.config_url
    assert client.post(reverse("two_factor_setup"), {"token": code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed is True
    assert client.get(reverse("home")).status_code == 200


def test_a_nurse_may_sign_in_without_a_second_factor(client, nurse):
    sign_in(client, nurse)
    assert client.get(reverse("home")).status_code == 200
    assert "Optional for your role" in client.get(reverse("two_factor_setup")).content.decode()


def test_a_user_with_a_device_verifies_it_after_the_password_every_time(client, nurse):
    device = TOTPDevice.objects.create(user=nurse, name="phone", confirmed=True)
    sign_in(client, nurse)
    response = client.get(reverse("patient_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("two_factor_verify"))
    wrong = client.post(reverse("two_factor_verify"), {"token": "12345"})
    assert "Enter the six digits" in wrong.content.decode()
    response = client.post(reverse("two_factor_verify"), {"token": code(device), "next": reverse("patient_list")})
    assert response.status_code == 302 and response["Location"] == reverse("patient_list")
    assert client.get(reverse("patient_list")).status_code == 200
    client.post(reverse("logout"))
    sign_in(client, nurse)
    assert client.get(reverse("home")).status_code == 302, "asked again at the next sign-in"


def test_verify_refuses_an_offsite_next(client, nurse):
    device = TOTPDevice.objects.create(user=nurse, name="phone", confirmed=True)
    sign_in(client, nurse)
    response = client.post(reverse("two_factor_verify"), {"token": code(device), "next": "https://evil.example.org/"})
    assert response["Location"] == reverse("home")


def test_repeated_wrong_codes_are_throttled(client, nurse):
    device = TOTPDevice.objects.create(user=nurse, name="phone", confirmed=True)
    sign_in(client, nurse)
    right = code(device)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(3):
        client.post(reverse("two_factor_verify"), {"token": wrong})
    response = client.post(reverse("two_factor_verify"), {"token": right})
    assert response.status_code == 200, "the right code is refused while throttled"
