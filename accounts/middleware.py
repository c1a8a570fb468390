from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import resolve_url
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme

SESSION_STARTED_KEY = "session_started_at"


class SessionLifetimeMiddleware:
    """Ends a session SESSION_ABSOLUTE_HOURS after sign-in, however active it was.

    The idle timeout is the sliding session cookie (SESSION_COOKIE_AGE with
    SESSION_SAVE_EVERY_REQUEST); this adds the absolute cap (ASVS 7.3.2).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            started = request.session.get(SESSION_STARTED_KEY)
            now = time.time()
            if started is None:
                request.session[SESSION_STARTED_KEY] = now
            elif now - started > settings.SESSION_ABSOLUTE_HOURS * 3600:
                logout(request)
                return redirect_to_login(request.get_full_path())
        return self.get_response(request)


class HtmxSignInMiddleware:
    """A signed-out htmx request (the session expired while the page stayed open) is sent
    to the sign-in page as a whole-page navigation (HX-Redirect), back to the page it came
    from. Without this the browser follows the redirect inside the request and htmx swaps
    the sign-in page into a table row, where the nurse's entry is silently lost."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.headers.get("HX-Request") != "true" or response.status_code != 302:
            return response
        if urlsplit(response["Location"]).path != resolve_url(settings.LOGIN_URL):
            return response
        current = request.headers.get("HX-Current-URL", "")
        back = urlsplit(current)
        if not url_has_allowed_host_and_scheme(current, allowed_hosts={request.get_host()}):
            back = urlsplit("/")
        target = redirect_to_login(back.path + (f"?{back.query}" if back.query else ""))
        signed_out = HttpResponse(status=200)
        signed_out["HX-Redirect"] = target["Location"]
        return signed_out


class RejectNulMiddleware:
    """A 400 for a query string or form post that contains a NUL character.

    PostgreSQL cannot store or compare NUL in text, so `?requirement=%00` on the worklist
    was a 500; no real input contains one. Refusing it here covers every GET filter and
    every raw `request.POST.get` of every view at once; forms also refuse it field by
    field (Django's ProhibitNullCharactersValidator).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request.GET) or (request.method == "POST" and _has_nul(request.POST)):
            return HttpResponseBadRequest("Bad request: a parameter contains a NUL character.",
                                          content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _has_nul(data: QueryDict) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values if isinstance(value, str))
               for key, values in data.lists())


class NoStoreMiddleware:
    """Pages for signed-in users carry patient data: no browser or proxy may cache them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated and "Cache-Control" not in response:
            add_never_cache_headers(response)
        return response


class ContentSecurityPolicyMiddleware:
    """A strict CSP (reliability.md S9, I5): scripts only from our own static files, no
    framing. Inline styles stay allowed: Chart.js and htmx set style attributes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
