"""Settings for the CPO platform, read from the environment in one place.

Embedded default (no environment): SQLite file, in-memory channel layer, Celery tasks run in-process.
Production and CI: DATABASE_URL (PostgreSQL) and REDIS_URL (channels-redis and the Celery broker).
"""

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CPO_VAR_DIR", BASE_DIR / "var"))  # what a running checkout writes (git-ignored)
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG=1")
    SECRET_KEY = "insecure-debug-only-key-do-not-use-in-production"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "axes",
    "cpo",
    "ocpp_gateway",
    "billing",
    "ocpi_api",
    "cpo.dashboard",  # the staff dashboard, on top of every app above: none of them imports it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves STATIC_ROOT (collectstatic) from daphne itself, compressed and with far-future caching of hashed names.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Numbers and Django's own texts in the reader's language (Accept-Language): "2,40 kWh" for German staff.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: it turns a locked-out login into its answer (after authentication has run).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cpo.urls"
ASGI_APPLICATION = "cpo.asgi.application"
WSGI_APPLICATION = "cpo.wsgi.application"

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
                "cpo.dashboard.permissions.roles",  # what the user may do, for the navigation on every page
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "cpo.sqlite3",  # type: ignore[typeddict-item]  # Django takes a path too
            # A file (not :memory:) so that a live server started by the tests shares the test database.
            "TEST": {"NAME": str(VAR_DIR / "test-cpo.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # the embedded default, or a sqlite:/// DATABASE_URL
    # SQLite has one writer at a time (several processes and the gateway's database threads share the file):
    # readers never wait (WAL); every transaction takes the write lock when it begins (IMMEDIATE), because a
    # transaction that read first cannot wait for it later ("database is locked" at once); writers queue for up to
    # `timeout` seconds instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and Celery broker ---------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 defaults to a 5 s socket timeout (channels_redis blocks up to 5 s on a read, so every
                # idle consumer died) and a 100-connection pool (a reconnect storm overflowed it): see
                # django/channels_redis#422 and bench/RESULTS.md.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 10_000}],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "cpo"),
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds what several daphne processes must share cheaply (failed charger logins, lockouts): Redis when
# REDIS_URL is set, else the process's memory (Django's default).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", os.environ.get("CHANNEL_LAYER_PREFIX", "cpo")),
        }
    }

CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"  # a hostname, or kombu warns "No hostname was supplied"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "cpo")
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")  # beat's state, beside the SQLite file
CELERY_BEAT_SCHEDULE: dict = {
    "ocpp-message-log-prune": {"task": "ocpp_gateway.tasks.message_log_prune_task", "schedule": 24 * 3600},
    "ocpp-transaction-close-stale": {"task": "ocpp_gateway.tasks.transaction_close_stale_task", "schedule": 3600},
}

# --- Auth, i18n, static ----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"  # the dashboard's login page
LOGIN_REDIRECT_URL = "/"
LANGUAGE_CODE = "en-us"
# Languages whose number formats the dashboard follows (the browser's Accept-Language picks one; English otherwise).
LANGUAGES = [("en", "English"), ("de", "German"), ("nl", "Dutch"), ("fr", "French")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start until collectstatic made it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production: hashed, gzip/brotli-compressed copies written by collectstatic (a page refers to a file by its
    # content hash, so browsers may cache it for ever). DEBUG: files as they are, found in the apps, no collectstatic.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "ocpi_api.openapi.OcpiAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CPO platform OCPI 2.2.1 interface",
    "VERSION": "2.2.1",
    "SERVE_INCLUDE_SCHEMA": False,
    # One OCPI enum, one schema name (tokens' default_profile_type and charging preferences' profile_type).
    "ENUM_NAME_OVERRIDES": {"ProfileTypeEnum": "ocpi_api.models.ProfileType"},
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # The ocpp library logs every frame at INFO; our message log keeps them already.
        "ocpp": {"level": os.environ.get("OCPP_LIB_LOG_LEVEL", "WARNING")},
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # its INFO lines say "BEGIN" on every start
        "django.channels.server": {"level": "WARNING"},
        # Through the root handler only: Django's own DEBUG console handler printed each of its lines twice.
        "django": {"handlers": [], "level": "INFO"},
    },
}
if CELERY_TASK_ALWAYS_EAGER:  # tasks run in-process: no line per task in the server's log (workers log at their -l)
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}

# --- Web security: production defaults, each overridable from the environment -------------------------------
# Behind a TLS-terminating proxy (deploy/), set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO so Django knows the
# request was HTTPS (onboarding then shows wss:// URLs) - only where the proxy overwrites that header.
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is the operator's decision (a browser list submission for the whole domain): off unless asked for.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles, images and sockets from this origin only; no inline
# script or style anywhere (data for scripts travels in <script type="application/json"> blocks, which do not
# execute); nobody may frame the pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *[u for u in os.environ.get("DASHBOARD_MAP_TILE_ORIGINS", "").split(",") if u]],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Dashboard and admin login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from
# one address, that pair is locked out for AXES_COOLOFF_MINUTES; every failure is recorded for staff.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_MINUTES", 15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a proxy the client address comes from X-Forwarded-For, trusted only when a proxy is declared.
AXES_IPWARE_PROXY_COUNT = env_int("AXES_PROXY_COUNT", 0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# --- This CPO's OCPI identity ----------------------------------------------------------------------------------
OCPI_COUNTRY_CODE = os.environ.get("OCPI_COUNTRY_CODE", "NL")
OCPI_PARTY_ID = os.environ.get("OCPI_PARTY_ID", "CPO")
OCPI_BUSINESS_NAME = os.environ.get("OCPI_BUSINESS_NAME", "Open CPO")
OCPI_BUSINESS_WEBSITE = os.environ.get("OCPI_BUSINESS_WEBSITE", "")
# Public base URL that partners use to reach us (versions URL = OCPI_BASE_URL + "/ocpi/versions").
OCPI_BASE_URL = os.environ.get("OCPI_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
if "ALLOWED_HOSTS" not in os.environ:  # the host partners reach us at is ours (e.g. `make run HOST=192.168.1.5`)
    _base_host = urlsplit(OCPI_BASE_URL).hostname or ""
    _base_host = f"[{_base_host}]" if ":" in _base_host else _base_host
    if _base_host and _base_host not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_base_host)

# --- OCPP gateway ----------------------------------------------------------------------------------------------
# Unknown identities: refused at the handshake (False), or admitted as Pending until staff accept them (True).
OCPP_ADMIT_UNKNOWN_STATIONS = env_bool("OCPP_ADMIT_UNKNOWN_STATIONS", False)
# How each charger authenticates is its own security profile (ChargingStation.security_profile), not a setting.
OCPP_HEARTBEAT_INTERVAL = env_int("OCPP_HEARTBEAT_INTERVAL", 300)
# Brute-force protection of the handshake: after this many failed authentications of one identity (or from one
# client address) within OCPP_AUTH_LOCKOUT_SECONDS, its handshakes are refused unchecked for that long.
# The address limit is higher: many chargers of a site may share one NAT address.
OCPP_AUTH_FAILURE_LIMIT = env_int("OCPP_AUTH_FAILURE_LIMIT", 10)
OCPP_AUTH_ADDRESS_FAILURE_LIMIT = env_int("OCPP_AUTH_ADDRESS_FAILURE_LIMIT", 50)
OCPP_AUTH_LOCKOUT_SECONDS = env_int("OCPP_AUTH_LOCKOUT_SECONDS", 300)
OCPP_MAX_FRAME_BYTES = env_int("OCPP_MAX_FRAME_BYTES", 65536)
OCPP_CALL_TIMEOUT = env_float("OCPP_CALL_TIMEOUT", 30.0)
OCPP_MESSAGE_LOG_ENABLED = env_bool("OCPP_MESSAGE_LOG_ENABLED", True)
OCPP_MESSAGE_LOG_RETENTION_DAYS = env_int("OCPP_MESSAGE_LOG_RETENTION_DAYS", 30)
OCPP_MESSAGE_LOG_FLUSH_SECONDS = env_float("OCPP_MESSAGE_LOG_FLUSH_SECONDS", 0.2)
# Stations' last_seen is written at most this often (one UPDATE for all stations heard from meanwhile).
OCPP_SEEN_FLUSH_SECONDS = env_float("OCPP_SEEN_FLUSH_SECONDS", 10.0)
# ACTIVE transactions of offline stations silent for this long are ended by housekeeping (stop reason Other).
OCPP_STALE_TRANSACTION_HOURS = env_float("OCPP_STALE_TRANSACTION_HOURS", 48)
# Threads (and database connections) per daphne process for the gateway's database work.
OCPP_DB_THREADS = env_int("OCPP_DB_THREADS", 4)
# Threads per daphne process for authorizations that ask someone outside our database (an EMSP, in real time): never
# the database threads, so an EMSP that hangs holds none of them.
OCPP_REALTIME_AUTHORIZATION_THREADS = env_int("OCPP_REALTIME_AUTHORIZATION_THREADS", 8)

# `make run` keeps the demo charger's secret in .env so that `seed_demo` sets the same one on every run.
DEMO_STATION_SECRET = os.environ.get("DEMO_STATION_SECRET", "")

# --- Dashboard ---------------------------------------------------------------------------------------------------
# Live events reach browsers in batches at most this far apart (one query per kind and one message per batch).
DASHBOARD_EVENTS_BATCH_SECONDS = env_float("DASHBOARD_EVENTS_BATCH_SECONDS", 0.25)

# --- OCPI API ---------------------------------------------------------------------------------------------------
# Most objects a paginated GET returns (also the default limit); partners asking for more get this many.
OCPI_PAGINATION_MAX_LIMIT = env_int("OCPI_PAGINATION_MAX_LIMIT", 100)
# Seconds for each call to a partner's API (connect, read, write, pool).
OCPI_HTTP_TIMEOUT = env_float("OCPI_HTTP_TIMEOUT", 10.0)
# Real-time authorization at an EMSP (mod_tokens POST authorize): seconds to wait for its answer before falling back
# per whitelist type. Keep it well under the charger's own timeout for Authorize/StartTransaction.
OCPI_REALTIME_AUTHORIZATION_TIMEOUT = env_float("OCPI_REALTIME_AUTHORIZATION_TIMEOUT", 5.0)
# Minutes after a START_SESSION / RESERVE_NOW during which its token is accepted at that charger without asking the
# EMSP again (mod_commands: 15).
OCPI_COMMAND_TOKEN_MINUTES = env_int("OCPI_COMMAND_TOKEN_MINUTES", 15)
OCPI_RESPONSE_URL_ANY_HOST = env_bool("OCPI_RESPONSE_URL_ANY_HOST", False)  # else only partner's own hosts
# Modules a partner must offer for the credentials handshake to succeed (else OCPI status 3003), e.g. "cdrs,sessions".
OCPI_PARTNER_REQUIRED_MODULES = [m for m in os.environ.get("OCPI_PARTNER_REQUIRED_MODULES", "").split(",") if m]
# Outbox of pushes to partners (ocpi_api/outbox.py). A failed push is retried after RETRY_BASE seconds, doubling up
# to RETRY_MAX, until GIVE_UP_HOURS (CDRs: CDR_GIVE_UP_HOURS) after it was written.
OCPI_OUTBOX_RETRY_BASE = env_float("OCPI_OUTBOX_RETRY_BASE", 30.0)
OCPI_OUTBOX_RETRY_MAX = env_float("OCPI_OUTBOX_RETRY_MAX", 6 * 3600.0)
OCPI_OUTBOX_GIVE_UP_HOURS = env_float("OCPI_OUTBOX_GIVE_UP_HOURS", 24.0)
OCPI_OUTBOX_CDR_GIVE_UP_HOURS = env_float("OCPI_OUTBOX_CDR_GIVE_UP_HOURS", 14 * 24.0)
# Retries due within this many seconds are queued with a countdown; later ones are found by the beat task that runs
# every POLL_SECONDS. A queued delivery not done after DISPATCH_LEASE seconds is queued again by beat.
OCPI_OUTBOX_COUNTDOWN_MAX = env_float("OCPI_OUTBOX_COUNTDOWN_MAX", 300.0)
OCPI_OUTBOX_POLL_SECONDS = env_float("OCPI_OUTBOX_POLL_SECONDS", 15.0)
OCPI_OUTBOX_DISPATCH_LEASE = env_float("OCPI_OUTBOX_DISPATCH_LEASE", 300.0)
OCPI_OUTBOX_RETENTION_DAYS = env_int("OCPI_OUTBOX_RETENTION_DAYS", 30)
# Gateway events are handed to the Celery workers in one task per this many seconds per daphne process.
OCPI_EVENTS_BATCH_SECONDS = env_float("OCPI_EVENTS_BATCH_SECONDS", 0.5)
# A running session is re-priced from its meter values at most this often (seconds; start and end at once).
OCPI_SESSION_SYNC_INTERVAL = env_float("OCPI_SESSION_SYNC_INTERVAL", 15.0)
# At most one Session PATCH per session per this many seconds (later changes wait in one coalesced PATCH).
OCPI_SESSION_PATCH_MIN_INTERVAL = env_float("OCPI_SESSION_PATCH_MIN_INTERVAL", 60.0)
# Transactions left without their Session or CDR this long (a task lost with a killed worker) are pushed again by beat.
OCPI_SESSION_RECONCILE_SECONDS = env_float("OCPI_SESSION_RECONCILE_SECONDS", 300.0)
CELERY_BEAT_SCHEDULE.update(
    {
        "billing-transactions-reconcile": {
            "task": "billing.tasks.transactions_reconcile",
            "schedule": OCPI_SESSION_RECONCILE_SECONDS,
        },
        "ocpi-outbox-deliver-due": {"task": "ocpi_api.tasks.outbox_deliver_due", "schedule": OCPI_OUTBOX_POLL_SECONDS},
        "ocpi-outbox-prune": {"task": "ocpi_api.tasks.outbox_prune", "schedule": 24 * 3600},
    }
)
CELERY_BEAT_SCHEDULE.update(
    {"dashboard-analytics-rollups": {"task": "cpo.dashboard.tasks.analytics_rollups_refresh", "schedule": 3600}}
)
