"""All settings, read from the environment (twelve-factor).

There is no production-only module: production behaviour follows from DEBUG=false plus
real values for SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and EMAIL_URL.
With nothing set and DEBUG=true the app runs on the embedded default: SQLite in var/,
a Celery broker in a folder (kombu's filesystem transport) and mail written to var/outbox/.
Every variable is listed, with a comment, in .env.example.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# NAME or, for container secrets, the contents of the file NAME_FILE names (any variable).
env = environ.FileAwareEnv()
# A bad boolean must fail loudly, not read as False (healthchecks' envbool).
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = (env.str("SECRET_KEY", default="") or "").strip()  # a secret file ends with a newline
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The public address of the app, for links in emails (reminders link to the worklist).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "simple_history",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "drf_spectacular",
    "accounts",
    "protocols",
    "patients",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "accounts.middleware.RejectNulMiddleware",  # before anything reads a parameter into a query
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Outside the two that send a signed-out user to the sign-in page: an htmx request
    # gets a whole-page navigation there, not the page swapped into a row.
    "accounts.middleware.HtmxSignInMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    # The clinic's clock for the request (accounts.clinic_time); reset after each one.
    "accounts.clinic_time.ClinicTimeZoneMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.two_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Who read, exported, changed or was refused what, from where (accounts.audit).
    "accounts.audit.AuditMiddleware",
    "accounts.middleware.NoStoreMiddleware",
    "accounts.middleware.ContentSecurityPolicyMiddleware",
    # Last, so that a lockout response is produced after authentication ran.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.clinics",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
# DATABASE_URL=postgres://user:pass@host:5432/name in production; SQLite in var/ otherwise.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves the web process and the worker at once: WAL lets pages
    # read while an import saves, a write waits for the lock (up to SQLITE_TIMEOUT s) rather
    # than failing at once, and IMMEDIATE takes the write lock when a transaction starts, so
    # two writers queue instead of one failing on a lock upgrade ("database is locked").
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": env.int("SQLITE_TIMEOUT", default=60), "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"})
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # The planner's cost of a random read: 1.1 for SSD storage (PostgreSQL's default of 4 is
    # for spinning disks, and makes it hash-join a whole clinic's patients to count a few
    # thousand recent results; issue #14). Set per connection, so no server change is needed.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = (_options.get("options", "") + " -c random_page_cost="
                           + env.str("PG_RANDOM_PAGE_COST", default="1.1")).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker and cache --------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by the web process and the worker (an import's progress, API throttling).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

# --- Auth and sessions --------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Automatic logoff (45 CFR 164.312(a)(2)(iii)): the session cookie slides with every
# request and dies after SESSION_IDLE_MINUTES without one; SESSION_ABSOLUTE_HOURS caps
# a session however active it is (accounts.middleware.SessionLifetimeMiddleware).
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=15)
SESSION_ABSOLUTE_HOURS = env.int("SESSION_ABSOLUTE_HOURS", default=12)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Failed-login throttling: user+IP pairs are locked out, so one nurse mistyping does
# not lock the whole ward behind one NAT address (../shared/reliability.md A6).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
AXES_ENABLED = env_bool("AXES_ENABLED", True)
# Second factor (TOTP, django-otp; reliability.md S12): optional for everyone, required for
# the roles listed here (comma-separated; clinic admins by default). A user with a confirmed
# device always verifies it after the password.
OTP_REQUIRED_ROLES = env.list("OTP_REQUIRED_ROLES", default=["admin"])
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Alectinib monitoring")
AXES_VERBOSE = False  # no start-up banner on stderr (management commands print one-line errors there)
# Break-glass access to a patient of another clinic (reliability.md S16; HIPAA
# 164.312(a)(2)(ii)): each grant is read-only, for one patient, and ends after this many hours.
BREAK_GLASS_HOURS = env.int("BREAK_GLASS_HOURS", default=4)
if not 1 <= BREAK_GLASS_HOURS <= 24:
    raise ImproperlyConfigured(f"BREAK_GLASS_HOURS must be between 1 and 24, not {BREAK_GLASS_HOURS}")

# --- HTTPS ----------------------------------------------------------------------------
# On by default whenever DEBUG is off; HTTPS_ONLY=false only for a plain-HTTP test bench.
HTTPS_ONLY = env_bool("HTTPS_ONLY", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS_ONLY:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    # Only behind a TLS-terminating proxy that overwrites X-Forwarded-Proto (set it there):
    # trusted by default, a client reaching gunicorn directly could claim HTTPS.
    if env_bool("BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
)
# /health/ is polled by load balancers over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]

# --- Internationalisation and time ---------------------------------------------------
LANGUAGE_CODE = "en-gb"
# Stored in UTC; shown in the clinic's local time. Each clinic has its own time zone
# (Clinic.timezone): every "today" and day boundary is the clinic's (accounts.clinic_time).
# This one is only the fallback for a user whose clinics are in several zones.
TIME_ZONE = env.str("TIME_ZONE", default="Europe/London")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Forms ------------------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Email ------------------------------------------------------------------------------
# EMAIL_URL=smtp+tls://user:pass@host:587 in production. The embedded default writes each
# message as a file in var/outbox/ for a developer to read.
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "outbox")
# Without a timeout a silent SMTP server blocks a worker forever (reliability.md F7).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Alectinib monitoring <no-reply@localhost>")

# --- Celery -----------------------------------------------------------------------------
# The broker is only a wake-up bell: every piece of work is a database row, and tasks
# carry ids (../shared/reliability.md §0).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env.str("CELERY_BROKER_DIR", default=str(VAR_DIR / "celery-broker")))
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # An unacknowledged message (its worker was killed) comes back after this: just above
        # the hard time limit (300 s), so a lost task returns within about one tick interval;
        # no task waits on a countdown longer than that (retry_backoff_max=300).
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=360),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
# Large imports (issue #15) run for minutes: on their own queue, so that the monitoring tick
# and the digests never wait behind one. The `importer` worker (docker-compose.yml) takes it;
# `make run`'s single worker takes both.
CELERY_IMPORT_QUEUE = env.str("CELERY_IMPORT_QUEUE", default="imports")
CELERY_TASK_ROUTES = {"patients.tasks.run_lab_import": {"queue": CELERY_IMPORT_QUEUE}}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The one place the schedule is defined.
CELERY_BEAT_SCHEDULE = {
    # Every minute: proves that beat and a worker are alive (shown on /health/).
    "heartbeat": {"task": "monitoring.tasks.heartbeat", "schedule": env.float("HEARTBEAT_INTERVAL_SECONDS", default=60.0)},
    # Every 5 minutes: dirty patients, newly overdue items, digests of clinics whose local
    # digest time has come (each clinic once a day), lost sends requeued.
    "monitoring-tick": {"task": "monitoring.tasks.monitoring_tick",
                        "schedule": env.float("MONITORING_TICK_SECONDS", default=300.0)},
    # 00:15 UTC daily: recompute every patient's due dates (phases move with time).
    "monitoring-full-sweep": {"task": "monitoring.tasks.monitoring_full_sweep", "schedule": crontab(hour=0, minute=15)},
}

# --- Logging ----------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# How long a worker holds a claimed email before another may take it over (a worker that
# died mid-send leaves its claim; the monitoring tick requeues it after this).
DIGEST_LEASE_SECONDS = env.int("DIGEST_LEASE_SECONDS", default=300)

# Heartbeat older than this makes /health/ report the scheduler as stale.
HEARTBEAT_STALE_SECONDS = env.int("HEARTBEAT_STALE_SECONDS", default=300)
# Issue #16: courses started on or after this date (YYYY-MM-DD) are expected to have their
# education recorded in the app; the worklist warns about the others. Empty: every course on
# treatment. A hospital upgrading sets its go-live date, so courses taught on paper before
# it are not flagged.
ORAL_PROGRAM_FROM = env.str("ORAL_PROGRAM_FROM", default="")



# --- REST API (issue #15) ------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.BearerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_auth.MemberOfTheKeysClinic"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("API_RATE", default="600/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Alectinib monitoring API",
    "DESCRIPTION": "Patients, lab results, monitoring status and recommendations of the key's clinic. "
                   "Send 'Authorization: Bearer <key>'; a clinic admin issues keys under Account → API keys.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
