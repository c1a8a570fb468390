"""Deployment checks of the backends' credentials (reliability.md S14; `manage.py check
--deploy`): PostgreSQL and Redis must not be reachable without a password in production.
TLS is supported through the URLs (`?sslmode=verify-full`, `rediss://`), see README."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def backend_credentials(app_configs, **kwargs):
    found = []
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql") and db.get("HOST", "").strip() and not db.get("PASSWORD"):
        found.append(Warning("DATABASE_URL has no password: the database accepts the app's role without one.",
                             hint="Put the password in DATABASE_URL (docker compose: POSTGRES_PASSWORD).",
                             id="accounts.W001"))
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        url = getattr(settings, name, "") or ""
        if url.startswith(("redis://", "rediss://")) and not urlsplit(url).password:
            found.append(Warning(f"{name} has no password: anyone who reaches Redis can read or inject tasks.",
                                 hint="redis://:<password>@host:6379/0 (docker compose: REDIS_PASSWORD).",
                                 id="accounts.W002"))
    return found
