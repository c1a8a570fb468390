"""REST API keys (issue #15): issue, authenticate, revoke.

`Authorization: Bearer <key>`. The key is 40 random URL-safe characters; only its
SHA-256 is stored. A request authenticated with a key acts as the key's user in the key's
clinic only, with that user's roles there: every API view scopes by
`queryset.for_clinic(request.auth.clinic_id)` (accounts.access.ClinicScopedQuerySet), so another clinic's object is a 404 exactly as on the pages."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from accounts.models import ApiToken, Clinic, Role, User
from protocols.errors import InputError

KEY_BYTES = 30  # 40 characters of base64url
LAST_USED_EVERY = timedelta(minutes=5)  # last_used_at is written at most this often


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_issue(*, clinic: Clinic, user: User, name: str, days: int, issued_by: User) -> tuple[ApiToken, str]:
    """A new key for `user` in `clinic`; the key itself is returned once and not kept."""
    if not 1 <= days <= ApiToken.MAX_DAYS:
        raise InputError(f"A key lasts between 1 and {ApiToken.MAX_DAYS} days.")
    if clinic.pk not in user.clinic_ids():
        raise InputError(f"{user} is not a member of {clinic.name}.")
    key = secrets.token_urlsafe(KEY_BYTES)
    token = ApiToken.objects.create(clinic=clinic, user=user, name=name.strip()[:80], prefix=key[:8],
                                    key_hash=_hash(key), created_by=issued_by,
                                    expires_at=timezone.now() + timedelta(days=days))
    return token, key


def token_revoke(*, token: ApiToken, user: User) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_by=user)


class BearerKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid key.") from None
        token = ApiToken.objects.select_related("user", "clinic").filter(key_hash=_hash(key)).first()
        now = timezone.now()
        if token is None or token.revoked_at is not None or token.expires_at <= now or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked key.")
        if token.clinic_id not in token.user.clinic_ids():
            raise exceptions.AuthenticationFailed("The key's user is no longer a member of its clinic.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


def has_api_role(request, *roles: str) -> bool:
    token = request.auth
    return isinstance(token, ApiToken) and token.user.has_role(token.clinic_id, *roles)


class MemberOfTheKeysClinic(BasePermission):
    """Any role reads; writes need a clinical write role (as on the pages)."""

    message = "This key's user has no role that allows this in the key's clinic."

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiToken):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return has_api_role(request, Role.NURSE, Role.PRESCRIBER, Role.ADMIN)




class BearerKeyScheme(OpenApiAuthenticationExtension):
    """The key, as the OpenAPI schema describes it."""

    target_class = "accounts.api_auth.BearerKeyAuthentication"
    name = "bearerKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A clinic's API key."}
