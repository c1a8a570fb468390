"""Second factor at sign-in (TOTP with django-otp; reliability.md S12, ASVS 6.3.3).

Optional for everyone; required for the roles in settings.OTP_REQUIRED_ROLES (clinic
admins by default) and for superusers. A user with a confirmed device verifies it after
the password on every sign-in; a user who must have one and has none is sent to set it up
before any other page.
"""

from __future__ import annotations

from base64 import b32encode
from collections.abc import Callable

import segno
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import TokenForm

# Pages reachable before the second factor: the two-factor pages themselves, signing out,
# the health check, and the sign-in page.
EXEMPT = {"two_factor_verify", "two_factor_setup", "logout", "login", "health"}


def second_factor_required(user) -> bool:
    if user.is_superuser:
        return True
    required = set(settings.OTP_REQUIRED_ROLES)
    return any(m.role in required for m in user._memberships())


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("home")


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.is_verified() and not request.path.startswith(settings.STATIC_URL):
            try:
                name = resolve(request.path_info).url_name
            except Resolver404:
                name = None
            if name not in EXEMPT:
                query = f"?next={request.get_full_path()}" if request.method == "GET" else ""
                if user_has_device(user, confirmed=True):
                    return redirect(reverse("two_factor_verify") + query)
                if second_factor_required(user):
                    return redirect(reverse("two_factor_setup") + query)
        return self.get_response(request)


def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """After the password: the code from the user's authenticator app."""
    if request.user.is_verified():
        return redirect(_next(request))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            return redirect(_next(request))
        form.add_error("token", "That code is not right, or it has expired. Try the current one.")
    return render(request, "accounts/two_factor_verify.html", {"form": form, "next": _next(request)})


def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Turn on two-step sign-in: scan the code (or type the key), confirm with a code."""
    if user_has_device(request.user, confirmed=True):
        return render(request, "accounts/two_factor_setup.html", {"enabled": True,
                                                                  "required": second_factor_required(request.user)})
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first() or TOTPDevice.objects.create(
        user=request.user, name="Authenticator app", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(request, "Two-step sign-in is on. You will be asked for a code at each sign-in.")
            return redirect(_next(request))
        form.add_error("token", "That code is not right, or it has expired. Try the current one.")
    uri = device.config_url  # otpauth://totp/<issuer>:<username>?secret=…&issuer=… (OTP_TOTP_ISSUER)
    return render(request, "accounts/two_factor_setup.html", {
        "form": form, "enabled": False, "required": second_factor_required(request.user), "next": _next(request),
        "qr_svg": segno.make(uri, error="m").svg_inline(scale=4), "secret": _spaced(device),
    })


def _spaced(device: TOTPDevice) -> str:
    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i:i + 4] for i in range(0, len(key), 4))
