"""Settings for the CPO platform, read from the environment in one place.

Embedded default (no environment): SQLite file, in-memory channel layer, Celery tasks run in-process.
Production and CI: DATABASE_URL (PostgreSQL) and REDIS_URL (channels-redis and the Celery broker).
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

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
    # /ocpi/: an oversize body is refused (413, envelope) before anything reads it; request/correlation ids.
    "ocpi_api.middleware.OcpiTransportMiddleware",
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
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A database host that stops answering (not refusing) must not hold the gateway's few database threads for
        # the operating system's two minutes of SYN retries: every charger's frames queue behind them. Fail in
        # seconds; the charger gets CALLERROR InternalError and sends a transaction message again (OCPP 1.6 §4.7).
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5))
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
# Group members are forgotten this long after they joined (channels' default: 24 h). Chargers are addressed by their
# channel name, never by group; the dashboard's browsers re-join their group well within this (cpo/dashboard).
CHANNEL_GROUP_EXPIRY = env_int("CHANNEL_GROUP_EXPIRY", 86_400)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis with a bounded connection pool that waits, and a receive loop that outlives Redis
            # outages (cpo/channel_layer.py).
            "BACKEND": "cpo.channel_layer.GatewayRedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # Connections per process; a caller waits up to `timeout` seconds for a free one. Each
                        # process needs one for its receive loop and a few for sends at any moment, so N processes
                        # stay far below Redis's maxclients (10,000) even in a reconnect storm.
                        "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 50),
                        "timeout": 5,
                        # Above channels_redis's 5 s blocking read (redis-py 8's default of 5 s broke every idle
                        # read: django/channels_redis#422), and an unreachable Redis is noticed within seconds.
                        "socket_timeout": 15,
                        "socket_connect_timeout": 2,
                        "socket_keepalive": True,
                        "health_check_interval": 15,  # a PING before reusing a connection idle that long
                    }
                ],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "cpo"),
                "capacity": 1000,
                "expiry": 60,
                "group_expiry": CHANNEL_GROUP_EXPIRY,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"group_expiry": CHANNEL_GROUP_EXPIRY}}
    }
# The cache holds what several daphne processes must share cheaply (failed charger logins, lockouts): Redis when
# REDIS_URL is set, else the process's memory (Django's default).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", os.environ.get("CHANNEL_LAYER_PREFIX", "cpo")),
            # Charger handshakes read the cache (failed-login counts): an unreachable Redis must fail them over to
            # the database within a second, not hang them (ocpp_gateway/services/security.py).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2, "health_check_interval": 15},
        }
    }

# The broker is REDIS_URL's Redis unless CELERY_BROKER_URL names another (a Redis of its own for the task queue).
# Without one: memory, with a hostname, or kombu warns "No hostname was supplied".
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "memory://localhost/"
if CELERY_BROKER_URL.startswith("redis://"):  # kombu's transport, surviving a broker outage (cpo/celery.py); rediss://
    CELERY_BROKER_TRANSPORT = "cpo.celery:RedisTransport"  # keeps kombu's own, which sets up TLS from the scheme
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
# Without a broker there is no beat process: a server process runs CELERY_BEAT_SCHEDULE itself (cpo/task_dispatch.py,
# InProcessBeat). The test suite's servers turn it off: tests run periodic tasks when they mean to.
EMBEDDED_BEAT = env_bool("EMBEDDED_BEAT", True)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Broker outages (Redis restarted, failed over, unreachable). Workers and beat reconnect for ever, at start too, and
# a task running when the connection went is cancelled: it was not acknowledged, so it comes back (acks_late; every
# task is idempotent). Sockets have timeouts, so a Redis that vanished without closing them is noticed in seconds
# (kombu's BRPOP and pub/sub checks run every health_check_interval) and a publish never hangs.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 3.0)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A task held by a worker that died (SIGKILL, OOM, lost host) stays in Redis's unacked set and is handed to another
# worker once it is CELERY_VISIBILITY_TIMEOUT seconds old (kombu's default: an hour). It must be longer than any task
# can be held legitimately: the longest countdown we publish (OCPI_OUTBOX_COUNTDOWN_MAX; session syncs are shorter)
# plus the longest time limit of a task (180 s, outbox delivery), or a task still waiting or running is run twice
# (harmless, tasks are idempotent, but wasted). Checked below.
CELERY_VISIBILITY_TIMEOUT = env_float("CELERY_VISIBILITY_TIMEOUT", 300.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # every worker looks for such tasks every 15 s (kombu: every 10 s, scanning on every 10th look)
    "unacked_restore_interval": 15,
    "unacked_restore_throttle": 1,
    "socket_timeout": env_float("CELERY_BROKER_SOCKET_TIMEOUT", 10.0),
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    "socket_keepalive": True,
    "health_check_interval": 10,
}
# A daphne process keeps the tasks it could not publish while the broker is away, up to this many
# (cpo/task_dispatch.py, Publisher); beyond that the oldest are dropped and left to beat's reconciliation.
TASK_PUBLISH_BACKLOG_MAX = env_int("TASK_PUBLISH_BACKLOG_MAX", 100_000)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "cpo")
# The chain a partner waits for (a transaction started or ended -> its Session and CDR -> their pushes; an EVSE status
# -> its PATCH) has a queue of its own, so that bulk work (meter-value re-pricing, reconciliation, configuration reads,
# retries) queued by thousands never stands in front of it: a worker takes from its queues in turn (kombu's round
# robin), so an urgent task waits for at most one bulk task per free process. A worker started without -Q consumes
# every queue below (`make run`); a deployment may also run workers on the urgent queue alone.
CELERY_URGENT_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-urgent"
# Each queue has an exchange and key of its own: one without them takes the default queue's, and gets every task too.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name), routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, CELERY_URGENT_QUEUE)
)
# Threads per worker process for the items of a batch task (cpo/worker_threads.py); each holds a database connection
# (count them in PostgreSQL's max_connections: worker processes x WORKER_THREADS). 8 halved the CDR latency of 4.
WORKER_THREADS = env_int("WORKER_THREADS", 8)
CELERY_TASK_ROUTES = {
    name: {"queue": CELERY_URGENT_QUEUE}
    for name in (
        "billing.tasks.transactions_bill_batch",
        "ocpi_api.tasks.evse_status_push_batch",
        "ocpi_api.tasks.outbox_partner_deliver",
    )
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")  # beat's state, beside the SQLite file
CELERY_BEAT_SCHEDULE: dict = {
    "ocpp-message-log-prune": {"task": "ocpp_gateway.tasks.message_log_prune_task", "schedule": 24 * 3600},
    "ocpp-transaction-close-stale": {"task": "ocpp_gateway.tasks.transaction_close_stale_task", "schedule": 3600},
    "ocpp-certificates-expiry-alert": {
        "task": "ocpp_gateway.tasks.certificates_expiry_alert_task",
        "schedule": 24 * 3600,
    },
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

# The largest request body accepted, in bytes (Django's setting; there are no file uploads). Above it the server
# answers 413 at the headers, before reading the body or checking a token (cpo/server.py, ocpi_api/middleware.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
# Request line plus headers, in bytes; above it daphne answers 431 (cpo/server.py). Twisted's own limit is 16 KiB.
HTTP_MAX_HEADER_BYTES = env_int("HTTP_MAX_HEADER_BYTES", 16_384)
# The server (cpo/server.py) stops reading a websocket whose application has this many frames not handled yet, and
# reads on when it has caught up with half of them: a charger faster than its consumer waits in its TCP buffers.
WEBSOCKET_MAX_QUEUED_MESSAGES = env_int("WEBSOCKET_MAX_QUEUED_MESSAGES", 64)
# A client has this long from connecting (or from the end of its previous request) to send a request's complete
# headers; then it is answered 408 and closed (twisted's own idle timeout is 12 hours, reset by every byte).
HTTP_HEADER_TIMEOUT_SECONDS = env_float("HTTP_HEADER_TIMEOUT_SECONDS", 20.0)
# Reconnect storms: at most this many websocket handshakes of one server process are with the application (being
# authenticated) at a time; the next ones wait their turn, oldest first, and meanwhile BootNotifications are answered
# Pending with an interval of WEBSOCKET_RETRY_AFTER_MIN_SECONDS to WEBSOCKET_RETRY_AFTER_MAX_SECONDS (random, so the
# chargers spread out). A handshake that finds WEBSOCKET_HANDSHAKES_MAX_WAITING waiting, or whose turn comes after
# WEBSOCKET_HANDSHAKE_MAX_WAIT_SECONDS (keep it below the chargers' connect timeout, often 30 s), is answered 503 with
# a Retry-After in the same range, before any database work. Errors of ours during a handshake, and handshakes not
# finished within daphne's --websocket_connect_timeout, get the same answer.
WEBSOCKET_HANDSHAKES_MAX_IN_FLIGHT = env_int("WEBSOCKET_HANDSHAKES_MAX_IN_FLIGHT", 1000)
WEBSOCKET_HANDSHAKES_MAX_WAITING = env_int("WEBSOCKET_HANDSHAKES_MAX_WAITING", 20_000)
WEBSOCKET_HANDSHAKE_MAX_WAIT_SECONDS = env_float("WEBSOCKET_HANDSHAKE_MAX_WAIT_SECONDS", 20.0)
WEBSOCKET_RETRY_AFTER_MIN_SECONDS = env_int("WEBSOCKET_RETRY_AFTER_MIN_SECONDS", 3)
WEBSOCKET_RETRY_AFTER_MAX_SECONDS = env_int("WEBSOCKET_RETRY_AFTER_MAX_SECONDS", 15)

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
    # Charger passwords in the frames the ocpp library logs (ocpp_gateway.redaction).
    "filters": {"ocpp_secrets": {"()": "ocpp_gateway.redaction.SecretsLogFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # The ocpp library logs every frame at INFO; our message log keeps them already.
        "ocpp": {"level": os.environ.get("OCPP_LIB_LOG_LEVEL", "WARNING"), "filters": ["ocpp_secrets"]},
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
# Behind the TLS-terminating proxy (deploy/) set TRUSTED_PROXIES (below): the request's scheme then comes from that
# proxy's X-Forwarded-Proto (onboarding shows wss:// URLs). SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO is the
# other way, only where every request passes a proxy that overwrites that header.
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "")
# Addresses (or networks, "10.0.0.0/24") of the TLS-terminating proxies in front of daphne (deploy/): only from them
# are X-Forwarded-For / X-Forwarded-Proto and the client-certificate header believed (cpo/proxy.py); from any other
# peer those headers are removed before the application sees them. Don't start daphne with --proxy-headers: it
# believes them from anyone.
TRUSTED_PROXIES = [p.strip() for p in os.environ.get("TRUSTED_PROXIES", "").split(",") if p.strip()]
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # balancers and Prometheus use plain HTTP
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is the operator's decision (a browser list submission for the whole domain): off unless asked for.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
X_FRAME_OPTIONS = "DENY"
# Map tiles for the dashboard's maps, e.g. "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png" (check the tile
# server's usage policy). Empty (the default): the maps draw their markers on a plain background, with no request
# leaving the dashboard. The tile server's origin is allowed as an image source below.
DASHBOARD_MAP_TILES = os.environ.get("DASHBOARD_MAP_TILES", "")
DASHBOARD_MAP_TILES_ATTRIBUTION = os.environ.get("DASHBOARD_MAP_TILES_ATTRIBUTION", "")


def _tile_origins(url: str) -> list[str]:
    if not url:
        return []
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc.replace('{s}.', '*.')}"]


# Content-Security-Policy (django-csp): scripts, styles, images and sockets from this origin only; no inline
# script or style anywhere (data for scripts travels in <script type="application/json"> blocks, which do not
# execute); nobody may frame the pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": [
            "'self'",
            "data:",
            *_tile_origins(DASHBOARD_MAP_TILES),
            *[u for u in os.environ.get("DASHBOARD_MAP_TILE_ORIGINS", "").split(",") if u],
        ],
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
# An EVSE/connector a charger reports that staff never registered is published to partners at once (True) or only
# once staff register it on the station page (False, the default).
OCPP_AUTO_ACCEPT_CONNECTORS = env_bool("OCPP_AUTO_ACCEPT_CONNECTORS", False)
# How each charger authenticates is its own security profile (ChargingStation.security_profile), not a setting.
OCPP_HEARTBEAT_INTERVAL = env_int("OCPP_HEARTBEAT_INTERVAL", 300)
# Brute-force protection of the handshake: after this many failed authentications of one identity (or from one
# client address) within OCPP_AUTH_LOCKOUT_SECONDS, its handshakes are refused unchecked for that long.
# The address limit is higher: many chargers of a site may share one NAT address.
OCPP_AUTH_FAILURE_LIMIT = env_int("OCPP_AUTH_FAILURE_LIMIT", 10)
OCPP_AUTH_ADDRESS_FAILURE_LIMIT = env_int("OCPP_AUTH_ADDRESS_FAILURE_LIMIT", 50)
OCPP_AUTH_LOCKOUT_SECONDS = env_int("OCPP_AUTH_LOCKOUT_SECONDS", 300)
# Password rotation (ocpp_gateway.services.passwords): once a charger accepted its new password, the old one still
# works until the charger logs in with the new one or this many seconds pass. Every OCPP_PASSWORD_ROTATION_DAYS
# (0: never) beat rotates the password of each online station with HTTP Basic whose password is older.
OCPP_PASSWORD_ROTATION_GRACE_SECONDS = env_int("OCPP_PASSWORD_ROTATION_GRACE_SECONDS", 24 * 3600)
OCPP_PASSWORD_ROTATION_DAYS = env_int("OCPP_PASSWORD_ROTATION_DAYS", 0)
OCPP_MAX_FRAME_BYTES = env_int("OCPP_MAX_FRAME_BYTES", 65536)
# Per-charger limits, so that one charger never degrades the others (docs/architecture.md, "Limits"):
# - frames from one connection: a token bucket of OCPP_FRAMES_BURST frames refilled at OCPP_MAX_FRAMES_PER_SECOND. A
#   frame beyond it is refused (a CALL gets CALLERROR GenericError "rate limit") without touching the database; a
#   charger refused frames without a pause for OCPP_FLOOD_CLOSE_SECONDS is closed with 1008 and alerted about. A
#   charger that waits for each answer (as OCPP-J asks) stays far below the rate.
OCPP_MAX_FRAMES_PER_SECOND = env_float("OCPP_MAX_FRAMES_PER_SECOND", 100.0)
OCPP_FRAMES_BURST = env_int("OCPP_FRAMES_BURST", 500)
OCPP_FLOOD_CLOSE_SECONDS = env_float("OCPP_FLOOD_CLOSE_SECONDS", 10.0)
#   Its handshakes are then refused for OCPP_FLOOD_COOLDOWN_SECONDS (HTTP 503 with Retry-After, in every gateway
#   process sharing the cache), so that it cannot reconnect at once and flood again.
OCPP_FLOOD_COOLDOWN_SECONDS = env_int("OCPP_FLOOD_COOLDOWN_SECONDS", 60)
# - JSON nested deeper than this is a format violation, refused before it is parsed (OCPP payloads nest < 10 deep).
OCPP_MAX_JSON_DEPTH = env_int("OCPP_MAX_JSON_DEPTH", 64)
# - the message log keeps at most OCPP_MESSAGE_LOG_MAX_FRAMES frames (in and out) of one station per
#   OCPP_MESSAGE_LOG_WINDOW_SECONDS; the frames beyond are not logged, and one row says how many were left out.
OCPP_MESSAGE_LOG_MAX_FRAMES = env_int("OCPP_MESSAGE_LOG_MAX_FRAMES", 600)
OCPP_MESSAGE_LOG_WINDOW_SECONDS = env_float("OCPP_MESSAGE_LOG_WINDOW_SECONDS", 60.0)
# Security profile 3: the proxy verifies the charger's client certificate against the CA and passes its subject's
# common name in this header (believed only from TRUSTED_PROXIES); the CN must be the station's identity.
OCPP_CLIENT_CERT_CN_HEADER = os.environ.get("OCPP_CLIENT_CERT_CN_HEADER", "X-Client-Cert-CN")
# The CA that signs chargers' certificate signing requests (SignCertificate): PEM certificate and PEM private key
# (unencrypted; keep the file readable by the gateway only). Unset: SignCertificate is answered Rejected.
OCPP_CA_CERT_FILE = os.environ.get("OCPP_CA_CERT_FILE", "")
OCPP_CA_KEY_FILE = os.environ.get("OCPP_CA_KEY_FILE", "")
OCPP_CERTIFICATE_VALIDITY_DAYS = env_int("OCPP_CERTIFICATE_VALIDITY_DAYS", 365)
# A station whose current certificate expires within this many days is alerted about (daily, and on its page).
OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS = env_int("OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS", 30)
OCPP_CALL_TIMEOUT = env_float("OCPP_CALL_TIMEOUT", 30.0)
OCPP_MESSAGE_LOG_ENABLED = env_bool("OCPP_MESSAGE_LOG_ENABLED", True)
OCPP_MESSAGE_LOG_RETENTION_DAYS = env_int("OCPP_MESSAGE_LOG_RETENTION_DAYS", 30)
OCPP_MESSAGE_LOG_FLUSH_SECONDS = env_float("OCPP_MESSAGE_LOG_FLUSH_SECONDS", 0.2)
# Stations' last_seen is written at most this often (one UPDATE for all stations heard from meanwhile).
OCPP_SEEN_FLUSH_SECONDS = env_float("OCPP_SEEN_FLUSH_SECONDS", 10.0)
# A closed socket's station goes offline within this (one statement for all sockets closed meanwhile).
OCPP_DISCONNECTS_FLUSH_SECONDS = env_float("OCPP_DISCONNECTS_FLUSH_SECONDS", 0.2)
# Station liveness (ocpp_gateway/services/liveness.py). Each gateway process holds a lease it renews every
# RENEW_SECONDS; a lease not renewed for LEASE_SECONDS is a dead process, and the stations it held go offline. A
# station not heard from for OFFLINE_AFTER_HEARTBEATS heartbeat intervals (the one we gave it at boot, or the longer
# one it reports) goes offline too. Both rules are applied every LIVENESS_CHECK_SECONDS by beat and by each gateway
# process.
OCPP_GATEWAY_LEASE_SECONDS = env_float("OCPP_GATEWAY_LEASE_SECONDS", 60.0)
OCPP_GATEWAY_LEASE_RENEW_SECONDS = env_float("OCPP_GATEWAY_LEASE_RENEW_SECONDS", 15.0)
OCPP_OFFLINE_AFTER_HEARTBEATS = env_float("OCPP_OFFLINE_AFTER_HEARTBEATS", 3.0)
OCPP_LIVENESS_CHECK_SECONDS = env_float("OCPP_LIVENESS_CHECK_SECONDS", 30.0)
CELERY_BEAT_SCHEDULE["ocpp-stations-liveness-check"] = {
    "task": "ocpp_gateway.tasks.stations_liveness_check_task",
    "schedule": OCPP_LIVENESS_CHECK_SECONDS,
    "options": {"expires": OCPP_LIVENESS_CHECK_SECONDS},  # a check queued while no worker ran is not worth running
}
if OCPP_PASSWORD_ROTATION_DAYS > 0:
    CELERY_BEAT_SCHEDULE["ocpp-station-passwords-rotate"] = {
        "task": "ocpp_gateway.tasks.station_passwords_rotate_due_task",
        "schedule": 3600,
    }
# ACTIVE transactions of offline stations silent for this long are ended by housekeeping (stop reason Other).
OCPP_STALE_TRANSACTION_HOURS = env_float("OCPP_STALE_TRANSACTION_HOURS", 48)
# Clock sanity (ocpp_gateway/services/clock.py): a charger's timestamp more than OCPP_CLOCK_MAX_AHEAD_SECONDS ahead of
# our clock, before OCPP_CLOCK_FLOOR, or more than OCPP_CLOCK_MAX_DAYS_BEFORE_REGISTRATION days before the station was
# registered is not believed: the time we received the frame is recorded instead, the frame is flagged in the message
# log, and the station shows the skew to staff (on the overview for OCPP_CLOCK_WARNING_HOURS).
OCPP_CLOCK_MAX_AHEAD_SECONDS = env_int("OCPP_CLOCK_MAX_AHEAD_SECONDS", 300)
OCPP_CLOCK_MAX_DAYS_BEFORE_REGISTRATION = env_int("OCPP_CLOCK_MAX_DAYS_BEFORE_REGISTRATION", 30)
OCPP_CLOCK_FLOOR = datetime.fromisoformat(os.environ.get("OCPP_CLOCK_FLOOR", "2020-01-01T00:00:00Z"))
if OCPP_CLOCK_FLOOR.tzinfo is None:
    OCPP_CLOCK_FLOOR = OCPP_CLOCK_FLOOR.replace(tzinfo=UTC)
OCPP_CLOCK_WARNING_HOURS = env_float("OCPP_CLOCK_WARNING_HOURS", 24)
# Local authorization lists (ocpp_gateway.services.local_list): every station's list follows our own tokens and the
# partners' tokens that may be whitelisted. After a token changes, stations get a differential SendLocalList once per
# OCPP_LOCAL_LIST_DEBOUNCE_SECONDS; a station that never said how many entries one message may carry
# (SendLocalListMaxLength / LocalAuthListCtrlr.ItemsPerMessage) gets this many per message. Off: no list is kept.
OCPP_LOCAL_LIST_ENABLED = env_bool("OCPP_LOCAL_LIST_ENABLED", True)
OCPP_LOCAL_LIST_DEBOUNCE_SECONDS = env_float("OCPP_LOCAL_LIST_DEBOUNCE_SECONDS", 10.0)
OCPP_LOCAL_LIST_ITEMS_PER_MESSAGE = env_int("OCPP_LOCAL_LIST_ITEMS_PER_MESSAGE", 100)
# What an accepted boot asks of a station (its configuration the first time, its local list version) runs in a task;
# with a worker, the stations that booted within this many seconds share tasks (ocpp_gateway.receivers).
OCPP_BOOT_CHECKS_BATCH_SECONDS = env_float("OCPP_BOOT_CHECKS_BATCH_SECONDS", 1.0)
# A boot-checks task checks stations for this many seconds, then queues the rest again, so a wave of boots never holds
# a worker process (and the urgent tasks behind it) for the whole wave.
OCPP_BOOT_CHECKS_TASK_SECONDS = env_float("OCPP_BOOT_CHECKS_TASK_SECONDS", 5.0)
# Diagnostics and logs (ocpp_gateway.services.diagnostics): stations upload them (HTTP PUT or POST) to
# OCPP_UPLOAD_BASE_URL + /ocpp-uploads/<token>/, a link valid OCPP_DIAGNOSTICS_LINK_HOURS for one file of at most
# OCPP_DIAGNOSTICS_MAX_BYTES, kept under OCPP_UPLOADS_DIR for OCPP_DIAGNOSTICS_RETENTION_DAYS (beat deletes older ones).
OCPP_UPLOAD_BASE_URL = os.environ.get("OCPP_UPLOAD_BASE_URL", OCPI_BASE_URL).rstrip("/")
OCPP_UPLOADS_DIR = Path(os.environ.get("OCPP_UPLOADS_DIR", VAR_DIR / "uploads"))
OCPP_DIAGNOSTICS_LINK_HOURS = env_float("OCPP_DIAGNOSTICS_LINK_HOURS", 24)
OCPP_DIAGNOSTICS_MAX_BYTES = env_int("OCPP_DIAGNOSTICS_MAX_BYTES", 100 * 1024 * 1024)
OCPP_DIAGNOSTICS_RETENTION_DAYS = env_int("OCPP_DIAGNOSTICS_RETENTION_DAYS", 90)
CELERY_BEAT_SCHEDULE["ocpp-diagnostics-prune"] = {
    "task": "ocpp_gateway.tasks.diagnostics_prune_task",
    "schedule": 24 * 3600,
}
# Firmware (ocpp_gateway.services.firmware): stations download uploaded images through signed links valid this long;
# running campaigns are advanced (their `rate` stations per minute) by beat every minute.
OCPP_FIRMWARE_LINK_HOURS = env_float("OCPP_FIRMWARE_LINK_HOURS", 48)
# An update under way whose station reports nothing about it for this long is given up as unanswered (its campaign
# retries it while attempts are left; it no longer holds a place among the campaign's max_concurrent).
OCPP_FIRMWARE_SILENT_MINUTES = env_float("OCPP_FIRMWARE_SILENT_MINUTES", 180)
CELERY_BEAT_SCHEDULE["ocpp-firmware-campaigns-advance"] = {
    "task": "ocpp_gateway.tasks.firmware_campaigns_advance_task",
    "schedule": 60,
}
# Reservations past their expiry date are ended (EXPIRED) by beat this often (seconds).
OCPP_RESERVATION_EXPIRY_POLL_SECONDS = env_float("OCPP_RESERVATION_EXPIRY_POLL_SECONDS", 60.0)
CELERY_BEAT_SCHEDULE["ocpp-reservations-expire"] = {
    "task": "ocpp_gateway.tasks.reservations_expire_task",
    "schedule": OCPP_RESERVATION_EXPIRY_POLL_SECONDS,
}
# ACTIVE transactions of online stations we heard nothing about for this long: housekeeping asks the charger (1.6
# TriggerMessage MeterValues, 2.0.1 GetTransactionStatus) and ends them when it says they are over or does not answer;
# it looks every OCPP_SILENT_TRANSACTION_CHECK_SECONDS.
OCPP_SILENT_TRANSACTION_MINUTES = env_float("OCPP_SILENT_TRANSACTION_MINUTES", 60)
OCPP_SILENT_TRANSACTION_CHECK_SECONDS = env_float("OCPP_SILENT_TRANSACTION_CHECK_SECONDS", 300)
CELERY_BEAT_SCHEDULE["ocpp-transactions-probe-silent"] = {
    "task": "ocpp_gateway.tasks.transactions_probe_silent_task",
    "schedule": OCPP_SILENT_TRANSACTION_CHECK_SECONDS,
}
# Threads (and database connections) per daphne process for the gateway's database work. Eight on PostgreSQL: the
# threads mostly wait for it (a commit waits for its WAL flush): at 300 CALL/s a gateway using half a core answered
# at p99 3.1 s with four, 0.4 s with eight or sixteen (bench/RESULTS.md, 2026-12-03 18:37-18:43). SQLite, which
# serialises writers anyway, keeps four.
OCPP_DB_THREADS = env_int("OCPP_DB_THREADS", 4 if DATABASES["default"]["ENGINE"].endswith("sqlite3") else 8)
# Threads per daphne process for authorizations that ask someone outside our database (an EMSP, in real time): never
# the database threads, so an EMSP that hangs holds none of them.
OCPP_REALTIME_AUTHORIZATION_THREADS = env_int("OCPP_REALTIME_AUTHORIZATION_THREADS", 8)

# Load management (LoadGroup): the planner's profiles use this stack level (above a station's own defaults, below
# what a partner or staff set at a higher level); a group is rebalanced on every session start and end, and every
# LOAD_MANAGEMENT_INTERVAL_SECONDS for changes in draw and time-of-day limits.
LOAD_MANAGEMENT_STACK_LEVEL = env_int("LOAD_MANAGEMENT_STACK_LEVEL", 1)
LOAD_MANAGEMENT_INTERVAL_SECONDS = env_float("LOAD_MANAGEMENT_INTERVAL_SECONDS", 30.0)
LOAD_MANAGEMENT_LOCK_SECONDS = env_int("LOAD_MANAGEMENT_LOCK_SECONDS", 120)
# How long a gateway process trusts its list of managed stations: a new or changed group applies after this.
LOAD_MANAGEMENT_STATIONS_TTL_SECONDS = env_float("LOAD_MANAGEMENT_STATIONS_TTL_SECONDS", 30.0)
CELERY_BEAT_SCHEDULE["ocpp-load-groups-rebalance"] = {
    "task": "ocpp_gateway.tasks.load_groups_rebalance_task",
    "schedule": LOAD_MANAGEMENT_INTERVAL_SECONDS,
}
# Each planner run leaves a sample of its group (limit, planned, drawn; ocpp_gateway.models.LoadSample) for the load
# page's chart, except a run that changed no share within LOAD_HISTORY_MIN_SECONDS of the last sample (the draw is
# then sampled once a minute); housekeeping deletes samples older than LOAD_HISTORY_RETENTION_DAYS, daily.
LOAD_HISTORY_MIN_SECONDS = env_float("LOAD_HISTORY_MIN_SECONDS", 60.0)
LOAD_HISTORY_RETENTION_DAYS = env_float("LOAD_HISTORY_RETENTION_DAYS", 7)
CELERY_BEAT_SCHEDULE["ocpp-load-samples-prune"] = {
    "task": "ocpp_gateway.tasks.load_samples_prune_task",
    "schedule": 24 * 3600,
}

# `make run` keeps the demo charger's secret in .env so that `seed_demo` sets the same one on every run.
DEMO_STATION_SECRET = os.environ.get("DEMO_STATION_SECRET", "")

# --- Alerts (cpo/alerts.py) ----------------------------------------------------------------------------------------
# A new alert is sent per kind through the channels ALERT_NOTIFY names, JSON from the environment, e.g.
# {"security_event": ["email", "webhook"], "*": ["email"]} ("*": every other kind). Default: e-mail for every kind when
# ALERT_EMAIL_TO (comma-separated addresses) is set. The webhook gets the alert as JSON by POST.
ALERT_EMAIL_TO = [a.strip() for a in os.environ.get("ALERT_EMAIL_TO", "").split(",") if a.strip()]
ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 10.0)
ALERT_NOTIFY: dict[str, list[str]] = json.loads(os.environ.get("ALERT_NOTIFY", "") or "null") or (
    {"*": ["email"]} if ALERT_EMAIL_TO else {}
)
# A station offline (and not seen) this long raises an alert; beat looks every ALERT_CHECK_SECONDS, and resolves the
# alerts of stations back online.
ALERT_STATION_OFFLINE_MINUTES = env_float("ALERT_STATION_OFFLINE_MINUTES", 15)
ALERT_CHECK_SECONDS = env_float("ALERT_CHECK_SECONDS", 60)
CELERY_BEAT_SCHEDULE["alerts-station-offline-check"] = {
    "task": "cpo.tasks.alerts_station_offline_check_task",
    "schedule": ALERT_CHECK_SECONDS,
}
# SecurityEventNotification types that raise no alert (routine ones; every type is still in the message log).
ALERT_SECURITY_EVENTS_IGNORED = [
    t.strip() for t in os.environ.get("ALERT_SECURITY_EVENTS_IGNORED", "StartupOfTheDevice").split(",") if t.strip()
]
# A push to a partner that failed this many times in a row (or was given up) raises a partner_delivery_failing alert.
ALERT_PARTNER_DELIVERY_ATTEMPTS = env_int("ALERT_PARTNER_DELIVERY_ATTEMPTS", 5)
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # for the filebased backend
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "cpo@localhost")

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
OCPI_RESPONSE_URL_ANY_HOST = env_bool("OCPI_RESPONSE_URL_ANY_HOST", False)  # else only the versions URL's host
# Non-public networks every partner's URLs may point to (comma-separated; ocpi_api.egress). Outside DEBUG: none, public
# addresses only (one partner's lab network goes on Partner.allowed_networks); DEBUG: loopback, for a local simulator.
OCPI_PARTNER_ALLOWED_NETWORKS = [
    n.strip()
    for n in os.environ.get("OCPI_PARTNER_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128" if DEBUG else "").split(",")
    if n.strip()
]
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
OCPI_OUTBOX_COUNTDOWN_MAX = env_float("OCPI_OUTBOX_COUNTDOWN_MAX", 60.0)
OCPI_OUTBOX_POLL_SECONDS = env_float("OCPI_OUTBOX_POLL_SECONDS", 15.0)
OCPI_OUTBOX_DISPATCH_LEASE = env_float("OCPI_OUTBOX_DISPATCH_LEASE", 30.0)
# A worker sending a push holds it for SENDING_LEASE seconds and renews the lease while the call runs: no other worker
# repeats a call in flight, and the push of a worker that died is queued again by beat within SENDING_LEASE +
# POLL_SECONDS (keep that under a minute).
OCPI_OUTBOX_SENDING_LEASE = env_float("OCPI_OUTBOX_SENDING_LEASE", 20.0)
# With a worker, a partner's due pushes are sent by one task at a time per partner (`outbox_partner_deliver`), up to
# WORKER_THREADS calls at once (never two of one object), for at most PARTNER_BUDGET seconds before it queues itself
# again (so one busy partner does not hold a worker process for ever).
OCPI_OUTBOX_PARTNER_BUDGET = env_float("OCPI_OUTBOX_PARTNER_BUDGET", 10.0)
# Seconds to wait for a partner's answer to a push, per OCPI module (others: OCPI_HTTP_TIMEOUT). A push not answered
# in time is retried no sooner than this long again (it may still be running at the partner). CDRs get longer: an
# EMSP may check and store a CDR slowly, and a CDR POST given up too early reaches it twice.
OCPI_PUSH_TIMEOUTS = {
    "cdrs": env_float("OCPI_CDR_PUSH_TIMEOUT", 30.0),
    "sessions": env_float("OCPI_SESSION_PUSH_TIMEOUT", 15.0),
}
OCPI_OUTBOX_RETENTION_DAYS = env_int("OCPI_OUTBOX_RETENTION_DAYS", 30)
# Gateway events are handed to the Celery workers in one task per this many seconds per daphne process.
OCPI_EVENTS_BATCH_SECONDS = env_float("OCPI_EVENTS_BATCH_SECONDS", 0.5)
# At most one Session PATCH per session per this many seconds (later changes wait in one coalesced PATCH).
OCPI_SESSION_PATCH_MIN_INTERVAL = env_float("OCPI_SESSION_PATCH_MIN_INTERVAL", 60.0)
# A running session is re-priced from its meter values at most this often (seconds; start and end at once). By
# default as often as the partner may get a PATCH: re-pricing each 15 s made four runs per PATCH sent, and billing
# was four fifths of the worker's time at 1,000 charging sessions (bench/RESULTS.md, 2026-12-03 18:47).
OCPI_SESSION_SYNC_INTERVAL = env_float("OCPI_SESSION_SYNC_INTERVAL", OCPI_SESSION_PATCH_MIN_INTERVAL)
# Transactions left without their Session or CDR this long (a task lost with a killed worker) are pushed again by beat.
OCPI_SESSION_RECONCILE_SECONDS = env_float("OCPI_SESSION_RECONCILE_SECONDS", 300.0)
# The longest a task is held unacknowledged by a live worker: a countdown (an outbox retry, a session sync) plus the
# longest time limit (outbox delivery, 180 s). Redis hands a task held longer to another worker (see above).
if CELERY_VISIBILITY_TIMEOUT <= max(OCPI_OUTBOX_COUNTDOWN_MAX, OCPI_SESSION_SYNC_INTERVAL) + 180:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must exceed OCPI_OUTBOX_COUNTDOWN_MAX (and OCPI_SESSION_SYNC_INTERVAL) + 180 s"
    )
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

# --- Production: graceful shutdown and metrics (docs/deployment.md) ------------------------------------------
# On SIGTERM a daphne process closes its chargers' sockets with 1012 and waits at most this long for their consumers
# to record them offline before it exits. Below honcho's 5 s between SIGTERM and SIGKILL; under systemd, keep
# TimeoutStopSec above it.
GRACEFUL_SHUTDOWN_SECONDS = env_float("GRACEFUL_SHUTDOWN_SECONDS", 4.0)
# /metrics (Prometheus) answers peers in these networks (after TRUSTED_PROXIES resolved the client's address), and
# anyone presenting `Authorization: Bearer <METRICS_TOKEN>` when that is set; everyone else gets 404.
METRICS_ALLOWED_NETWORKS = [
    n.strip() for n in os.environ.get("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128").split(",") if n.strip()
]
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Platform-wide gauges (outbox backlog, Celery queue depth) cost a query per scrape: served by the processes where
# this is on (deploy/Procfile: the web process), so that N gateway processes do not repeat them.
METRICS_PLATFORM_GAUGES = env_bool("METRICS_PLATFORM_GAUGES", True)
