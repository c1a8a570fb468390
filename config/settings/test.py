"""Speed and isolation overrides for the test run; everything else is base.py.

DATABASE_URL and REDIS_URL still come from the environment, so `make test` in CI runs
against PostgreSQL and Redis; with neither set it runs on SQLite.
"""

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("HTTPS_ONLY", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")

from .base import *  # noqa: E402,F403
from .base import STORAGES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The manifest storage needs collectstatic first; tests render pages without it.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_AUTOREFRESH = True  # no collectstatic in tests
# The second factor is tested on its own (accounts/tests/test_two_factor.py, which turns it
# on with the `settings` fixture); every other test signs in with force_login.
OTP_REQUIRED_ROLES: list[str] = []
