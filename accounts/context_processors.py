from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.models import Role


def clinics(request: HttpRequest) -> dict[str, Any]:
    base = {"session_idle_minutes": settings.SESSION_IDLE_MINUTES}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return base
    memberships = user._memberships()
    names = sorted({m.clinic.name for m in memberships})
    roles = sorted({m.get_role_display() for m in memberships})
    is_admin = any(m.role == Role.ADMIN for m in memberships)
    can_import = any(m.role in (Role.NURSE, Role.PRESCRIBER, Role.ADMIN) for m in memberships)
    return {**base, "nav_clinics": names, "nav_roles": roles, "nav_is_admin": is_admin, "nav_can_import": can_import}
