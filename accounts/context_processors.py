from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def clinics(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    memberships = user._memberships()
    names = sorted({m.clinic.name for m in memberships})
    roles = sorted({m.get_role_display() for m in memberships})
    return {"nav_clinics": names, "nav_roles": roles}
