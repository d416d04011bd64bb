"""ITIRP settings: one module, every environment configured by environment variables.

Nothing set = demo mode: SQLite in ./var and Celery's filesystem:// transport. Production sets DATABASE_URL,
REDIS_URL, SECRET_KEY, ALLOWED_HOSTS (see .env.example). Risk limits are data (admin, API), never settings.
Sections in cookiecutter-django's order, each setting assigned once; checks that involve several settings are
system checks (itirp/checks.py), and only what must refuse before Django loads stays here.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# PATHS, ENVIRONMENT ---------------------------------------------------------------------------------
BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
VAR_DIR = Path(env("ITIRP_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
# No DATABASE_URL: the embedded demo database (SQLite in VAR_DIR), one machine, one checkout.
EMBEDDED_DATABASE = not env("DATABASE_URL", default="")

# GENERAL --------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; for a demo (DEBUG, or the embedded database, so that manage.py works
    in a second shell next to `make run`) a random key kept in VAR_DIR beside its database; otherwise refuse:
    each host of a real deployment would make another key. Not a system check: the web server and Celery run none,
    and the key is used below (token signing, the audit seal key) while the settings load."""
    if key := env("SECRET_KEY", default=""):
        return key
    if not DEBUG and not EMBEDDED_DATABASE:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off ITIRP refuses to start without a secret key when DATABASE_URL "
            "is set: set SECRET_KEY in the environment (for example: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'), or set DEBUG=1 for a local demo."
        )
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True

# DATABASES, CACHES ----------------------------------------------------------------------------------
_database = env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'itirp.sqlite3'}")
_database["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
_database["CONN_HEALTH_CHECKS"] = True
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite ignores SELECT ... FOR UPDATE: IMMEDIATE transactions serialise risk decisions instead.
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    _database.setdefault("OPTIONS", {}).setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=3))
DATABASES = {"default": _database}
DB_IS_POSTGRES = _database["ENGINE"].startswith("django.db.backends.postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
    )
}

# URLS -----------------------------------------------------------------------------------------------
ROOT_URLCONF = "itirp.urls"
WSGI_APPLICATION = "itirp.wsgi.application"
ASGI_APPLICATION = "itirp.asgi.application"

# APPS -----------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: no CDN on a closed network
    "django_filters",
    "guardian",
    "pgtrigger",
    "axes",
    "django_celery_beat",
    "django_htmx",
    "accounts",
    "audit",
    "books",
    "market",
    "risk",
    "orders",
    "approvals",
    "alerts",
    "analytics",
    "itirp.apps.ItirpConfig",  # the project's own system checks (itirp/checks.py)
]

# AUTHENTICATION -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "/admin/login/"
# guardian's AnonymousUser row is made inactive with no usable password (accounts/anonymous.py).
GUARDIAN_GET_INIT_ANONYMOUS_USER = "accounts.anonymous.anonymous_user_init"
# Brute-force protection: a username is locked after repeated failures from any address;
# an address is throttled on the login endpoint (REST_FRAMEWORK throttle "login").
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_LOCKOUT_SECONDS", default=900))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# AxesMiddleware replaces the response of a locked-out login; ours keeps the API's JSON 429 with Retry-After.
AXES_LOCKOUT_CALLABLE = "accounts.apis.axes_lockout_response"
# A lock lasts LOGIN_LOCKOUT_SECONDS from the failure that set it: attempts while locked (even with the right
# password) do not extend it, so an attacker cannot keep the owner locked out for ever with one try a minute.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Address-level brute force is answered by the login endpoint's per-address throttle instead of an axes
# lockout, so one attacker on a shared address cannot lock every colleague behind it out.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# PASSWORDS ------------------------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# MIDDLEWARE -----------------------------------------------------------------------------------------
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.CorrelationIdMiddleware",
    # A declared body over DATA_UPLOAD_MAX_MEMORY_SIZE (MAX_REQUEST_BYTES) is a 413 before any parser reads it.
    "core.security.RequestSizeLimitMiddleware",
    "core.metrics.RequestMetricsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's session, user and messages middleware and django-htmx's, passed through on /api/ but for
    # API_SESSION_PATHS (bearer tokens there): core.middleware._BackOfficeOnly.
    "core.middleware.BackOfficeSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.BackOfficeAuthenticationMiddleware",
    "accounts.middleware.PermissionDeniedAuditMiddleware",
    "core.logs.RequestLogMiddleware",
    "core.middleware.BackOfficeMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.BackOfficeHtmxMiddleware",
    # On every path: the API's sign-in is locked out by axes too.
    "axes.middleware.AxesMiddleware",
]
# The API paths the back office's own pages call with the admin's session (the alerts banner: alerts.apis has
# session authentication beside the JWT): the session, user, messages and htmx middleware run for them as for a
# page. tests/system/test_back_office_middleware.py fails should another API view take sessions outside them.
API_SESSION_PATHS = ("/api/v1/alerts",)

# STATIC (project-wide files: vendored htmx, back-office CSS; nothing is loaded from a CDN) ----------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# TEMPLATES ------------------------------------------------------------------------------------------
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
                "risk.context_processors.backoffice",  # the kill-switch banner of every back-office page
            ],
        },
    },
]

# SECURITY (python manage.py check --deploy is clean with DEBUG off) ---------------------------------
# On by default whenever DEBUG is off; each can be turned off by environment for a particular deployment.
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=1 trusts its X-Forwarded-Proto (only if the proxy
# sets it on every request), and SECURE_SSL_REDIRECT=0 if the proxy redirects plain HTTP itself.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/?$", r"^metrics/?$"]  # probes and scrapers on the internal network
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("SECURE_PROXY_SSL_HEADER", default=False) else None
)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=64 * 1024)
# CORS stays closed: no CORS middleware, no Access-Control-Allow-Origin (the API is for servers and the back office).

# LOGGING (core/logs.py): web, worker, beat and manage.py alike --------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# json: one JSON object per line (the default, production). console: one short human line per event, coloured
# on a terminal (make run sets it). Any other value refuses to start (core.logs.formatter).
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"default": {"()": "core.logs.formatter", "kind": LOG_FORMAT}},
    "filters": {"quiet_periodic": {"()": "core.logs.QuietPeriodicTasks"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default handlers print plain text; everything goes to the root's handler instead.
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True, "level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        # request_finished (core.logs.RequestLogMiddleware) already says which request failed and how.
        "django.request": {"level": "ERROR"},
        # Beat's "Sending due task" and the worker's lines of periodic tasks that did nothing become DEBUG.
        "celery.beat": {"filters": ["quiet_periodic"]},
        "celery.worker.strategy": {"filters": ["quiet_periodic"]},
        "celery.app.trace": {"filters": ["quiet_periodic"]},
    },
}
# django-structlog's request lines: user_id is the username (the audit trail's user_id); request_started
# only at DEBUG (request_finished says it all); it never trusts X-Correlation-ID itself (core.middleware does).
DJANGO_STRUCTLOG_USER_ID_FIELD = "username"
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = 10  # DEBUG
DJANGO_STRUCTLOG_TRUST_UPSTREAM_CORRELATION_ID = False
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = True

# CELERY ---------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed"):
        (VAR_DIR / "broker" / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "broker" / "queue"),
        "data_folder_out": str(VAR_DIR / "broker" / "queue"),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        # Broadcasts (celery inspect ping, the health check's workers probe) keep their tables here, not in ./control.
        "control_folder": str(VAR_DIR / "broker" / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    # Longer than any task with its retries and countdowns (ecosystem.md, pitfall 2; checked by itirp.E001).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=50)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"
# django-celery-beat's DatabaseScheduler, waiting for the database at beat's start instead of exiting (itirp/beat.py).
CELERY_BEAT_SCHEDULER = "itirp.beat:PatientDatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic tasks. The exposure snapshots feed the risk dashboard's exposure-over-the-day chart; the sweeper
# re-queues stuck orders (ORDER_STUCK_AFTER_SECONDS); audit seals and verifications (audit/integrity.py).
EXPOSURE_SNAPSHOT_SECONDS = env.int("EXPOSURE_SNAPSHOT_SECONDS", default=60)
ORDER_SWEEP_SECONDS = env.int("ORDER_SWEEP_SECONDS", default=15)
AUDIT_SEAL_INTERVAL_SECONDS = env.float("AUDIT_SEAL_INTERVAL_SECONDS", default=10.0)
AUDIT_VERIFY_INTERVAL_SECONDS = env.float("AUDIT_VERIFY_INTERVAL_SECONDS", default=900.0)
# The 15-minute run re-hashes events from the last verified seal; this one re-hashes all of them.
AUDIT_VERIFY_FULL_INTERVAL_SECONDS = env.float("AUDIT_VERIFY_FULL_INTERVAL_SECONDS", default=86400.0)
# The VaR limit's scheduled run (analytics.tasks.var_limits_check): every scope with max_var, and the firm.
ANALYTICS_VAR_CHECK_SECONDS = env.int("ANALYTICS_VAR_CHECK_SECONDS", default=60)
CELERY_BEAT_SCHEDULE = {
    "analytics-var-limits": {"task": "analytics.var_limits_check", "schedule": float(ANALYTICS_VAR_CHECK_SECONDS)},
    "risk-exposure-snapshot": {"task": "risk.exposure_snapshot", "schedule": float(EXPOSURE_SNAPSHOT_SECONDS)},
    "orders-sweep-stuck": {"task": "orders.sweep_stuck", "schedule": float(ORDER_SWEEP_SECONDS)},
    # DAY orders of earlier UTC days still waiting end EXPIRED (orders.execution.orders_expire).
    "orders-expire-day": {"task": "orders.expire_day_orders", "schedule": 60.0},
    "audit-seal": {"task": "audit.seal", "schedule": AUDIT_SEAL_INTERVAL_SECONDS},
    "audit-verify": {"task": "audit.verify", "schedule": AUDIT_VERIFY_INTERVAL_SECONDS},
    "audit-verify-full": {"task": "audit.verify_full", "schedule": AUDIT_VERIFY_FULL_INTERVAL_SECONDS},
    "market-prune-bars": {"task": "market.prune_bars", "schedule": 86400.0},
    "approvals-expire": {"task": "approvals.expire", "schedule": 60.0},
}

# Four-eyes (API.md Governance), off by default: a raise of any limit by more than this percentage over its
# current value waits for a second risk manager's approval (unset: off; 0: every raise waits); 1 = leaving
# HALTED (any scope, the firm's kill switch included) waits too. A pending change expires after this long.
FOUR_EYES_LIMIT_RAISE_PCT = env.float("FOUR_EYES_LIMIT_RAISE_PCT", default=None)
FOUR_EYES_RELEASE_HALT = env.bool("FOUR_EYES_RELEASE_HALT", default=False)
FOUR_EYES_EXPIRY_SECONDS = env.int("FOUR_EYES_EXPIRY_SECONDS", default=3600)

# DJANGO REST FRAMEWORK, SIMPLE JWT, DRF-SPECTACULAR -------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.DecimalJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "itirp.exceptions.exception_handler",
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "login": env("LOGIN_THROTTLE_RATE", default="30/min"),
        "orders": env("ORDER_THROTTLE_RATE", default="6000/min"),
    },
    # The per-address login throttle keys on REMOTE_ADDR, like the audit trail. Only behind N trusted proxies
    # may X-Forwarded-For be believed (NUM_PROXIES=N); otherwise a client could pick a fresh address per request.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    # API.md: timestamps are ISO 8601 in UTC *with microseconds*. DRF's default drops ".000000" when a time
    # falls on a whole second, so one response in a million would change format; this format never does.
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}
ACCESS_TOKEN_LIFETIME = timedelta(seconds=env.int("ACCESS_TOKEN_LIFETIME_SECONDS", default=1800))
REFRESH_TOKEN_LIFETIME = timedelta(seconds=env.int("REFRESH_TOKEN_LIFETIME_SECONDS", default=86400))
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": ACCESS_TOKEN_LIFETIME,
    "REFRESH_TOKEN_LIFETIME": REFRESH_TOKEN_LIFETIME,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env("JWT_SIGNING_KEY", default="") or SECRET_KEY,  # empty = unset, never an empty key
    "ROTATE_REFRESH_TOKENS": False,  # API.md: refresh answers an access token only; the refresh token stays until logout
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "USER_ID_CLAIM": "user_id",
    "USER_ID_FIELD": "id",
    "LEEWAY": 0,
    # the access token class of API requests: simplejwt's, verified once per process (accounts.authentication)
    "AUTH_TOKEN_CLASSES": ("accounts.authentication.VerifiedOnceAccessToken",),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ITIRP API",
    "DESCRIPTION": "Institutional Trading Infrastructure & Risk Platform: orders, pre-trade risk, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # one name for a scope's trading state wherever it appears (state, previous)
    "ENUM_NAME_OVERRIDES": {"TradingStateEnum": "risk.models.TradingState"},
}

# YOUR STUFF: platform behaviour (not risk limits: those are data) -----------------------------------
ITIRP_VERSION = "1.0.0"
# An order without client_order_id identical to an earlier one inside this window is a duplicate.
# MARKET DATA -----------------------------------------------------------------------------------------------
# Exposures, P&L and limits are in this currency; other currencies convert at the feed's FX rates.
REPORTING_CURRENCY = env("REPORTING_CURRENCY", default="USD")
# The firm's price collar where its limits set none (RTS 6 Art. 15(1) fat-finger control): an order priced more
# than this percentage away from the market's reference price is refused (PRICE_COLLAR). Wide enough for the
# v1 demo's prices around the demo market, far inside a price 10x off. 0 = no default collar.
DEFAULT_PRICE_COLLAR_PCT = env.float("DEFAULT_PRICE_COLLAR_PCT", default=40.0)
# 1-minute bars older than this are deleted daily (market.prune_bars); daily bars are kept.
MARKET_BAR_RETENTION_DAYS = env.int("MARKET_BAR_RETENTION_DAYS", default=30)

ORDER_DUPLICATE_WINDOW_SECONDS = env.int("ORDER_DUPLICATE_WINDOW_SECONDS", default=5)
# Group commit (orders.batching): at most this many concurrent submissions of one process are decided and
# committed in one transaction under one hold of the risk lock.
ORDER_BATCH_MAX = env.int("ORDER_BATCH_MAX", default=64)
# Pauses that hold up every request at once (core.pauses): a hold of the risk lock, or a pass of the garbage
# collector, this long or longer is counted (itirp_risk_lock_long_holds, itirp_gc_long_pauses) and logged.
RISK_LOCK_WARN_SECONDS = env.float("RISK_LOCK_WARN_SECONDS", default=0.25)
GC_PAUSE_WARN_SECONDS = env.float("GC_PAUSE_WARN_SECONDS", default=0.1)
# Orders left APPROVED or EXECUTING longer than this are re-queued by the sweeper.
ORDER_STUCK_AFTER_SECONDS = env.int("ORDER_STUCK_AFTER_SECONDS", default=60)
HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=0.8)
EXPOSURE_SNAPSHOT_KEEP_DAYS = env.int("EXPOSURE_SNAPSHOT_KEEP_DAYS", default=30)

# Risk analytics (analytics/): VaR over the last ANALYTICS_LOOKBACK_DAYS daily returns; Monte Carlo paths, seed
# and distribution (normal or student_t); the method, confidence and horizon the scheduled VaR-limit run uses;
# how long its snapshots are kept.
ANALYTICS_LOOKBACK_DAYS = env.int("ANALYTICS_LOOKBACK_DAYS", default=500)
# numpy's BLAS threads per process (read when numpy is first imported, after these settings): the web and the
# worker run several processes per machine, so one thread each; more oversubscribe the cores (bench_analytics.py:
# Monte Carlo of 1,000 positions 0.49 s with one thread, 0.82 s with two, on the 2-core machine under load).
os.environ.setdefault("OPENBLAS_NUM_THREADS", env("ANALYTICS_BLAS_THREADS", default="1"))
ANALYTICS_MC_PATHS = env.int("ANALYTICS_MC_PATHS", default=10_000)
ANALYTICS_MC_SEED = env.int("ANALYTICS_MC_SEED", default=7)
ANALYTICS_MC_DISTRIBUTION = env("ANALYTICS_MC_DISTRIBUTION", default="normal")
ANALYTICS_LIMIT_METHOD = env("ANALYTICS_LIMIT_METHOD", default="historical")
ANALYTICS_LIMIT_CONFIDENCE = env.float("ANALYTICS_LIMIT_CONFIDENCE", default=0.99)
ANALYTICS_LIMIT_HORIZON_DAYS = env.int("ANALYTICS_LIMIT_HORIZON_DAYS", default=1)
ANALYTICS_SNAPSHOT_KEEP_DAYS = env.int("ANALYTICS_SNAPSHOT_KEEP_DAYS", default=7)

# Execution (orders/execution.py): the simulated venue (the one boundary that may be simulated), retries,
# the circuit breaker. Every number here is a default a deployment may change.
VENUE_ADAPTER = env("VENUE_ADAPTER", default="orders.venue.SimulatedVenue")
VENUE_NAME = env("VENUE_NAME", default="SIMULATED")
VENUE_LATENCY_MS = env.int("VENUE_LATENCY_MS", default=100)
VENUE_SUCCESS_PROBABILITY = env.float("VENUE_SUCCESS_PROBABILITY", default=0.9)
# Share of the unsuccessful answers that are final rejections rather than "venue unavailable" (transient).
VENUE_REJECT_SHARE = env.float("VENUE_REJECT_SHARE", default=0.0)
VENUE_MAX_SLIPPAGE = env("VENUE_MAX_SLIPPAGE", default="0.001")  # a fraction of the order price, read as Decimal
VENUE_SEED = env("VENUE_SEED", default="")  # set: outcomes are a function of (seed, order id, attempt)
VENUE_TIMEOUT_SECONDS = env.float("VENUE_TIMEOUT_SECONDS", default=5.0)
# A limit order the market has not reached rests; execution checks it again this often: with Redis, one pass
# for all the resting orders (orders.execution._recheck_pass) that locks and writes only those the latest prices
# say the market may fill, and calls the venue for them alone; without Redis, one message for the orders due
# (_rechecked), recording each check on the order.
VENUE_RECHECK_SECONDS = env.float("VENUE_RECHECK_SECONDS", default=2.0)
# Execution in groups (orders.execution.order_execute): a worker that takes an order to the venue also takes up
# to this many - 1 other orders waiting for their first venue call, sends them at the same time (one thread
# each) and books their fills in transactions of at most EXECUTION_BOOKING_MAX, each under one hold of the risk
# lock (the submissions' batches wait for a hold: a longer one is a longer wait). 1: one order at a time.
EXECUTION_GROUP_MAX = env.int("EXECUTION_GROUP_MAX", default=16)
EXECUTION_BOOKING_MAX = env.int("EXECUTION_BOOKING_MAX", default=16)
# Wake-ups instead of a message per submission batch (orders.execution.wake_claim): with Redis, a committed
# batch publishes its execution message only when no other such message is waiting for a worker (a Redis key
# set with NX, held at most this many seconds); that message's group takes the orders that came meanwhile.
# 0: every batch publishes its own message, as without Redis.
EXECUTION_WAKE_SECONDS = env.float("EXECUTION_WAKE_SECONDS", default=5.0)
# Deterministic answers for failure drills, e.g. "fail,fail,ok" (ok|fail|timeout|reject); past its end the
# random model answers. Scope "global": one sequence shared by every worker; "order": a sequence per order.
VENUE_SCRIPT = env("VENUE_SCRIPT", default="")
VENUE_SCRIPT_SCOPE = env("VENUE_SCRIPT_SCOPE", default="global")
# Fault drill only: the venue sleeps this long after filling, before answering (a worker killed meanwhile).
VENUE_HANG_AFTER_FILL_SECONDS = env.float("VENUE_HANG_AFTER_FILL_SECONDS", default=0.0)
EXECUTION_MAX_ATTEMPTS = env.int("EXECUTION_MAX_ATTEMPTS", default=3)
EXECUTION_RETRY_BACKOFF_SECONDS = [
    float(s) for s in env.list("EXECUTION_RETRY_BACKOFF_SECONDS", default=["1", "2", "4"])
]
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=5)
BREAKER_OPEN_SECONDS = env.float("BREAKER_OPEN_SECONDS", default=60.0)
# A half-open trial whose worker died gives its token back after this long, so the breaker cannot stick.
BREAKER_TRIAL_TIMEOUT_SECONDS = env.float("BREAKER_TRIAL_TIMEOUT_SECONDS", default=VENUE_TIMEOUT_SECONDS + 10)
EXECUTION_REDIS_PREFIX = env("EXECUTION_REDIS_PREFIX", default="itirp")

# --- Audit integrity: seals, witness, verification (audit/integrity/, audit/tasks.py) ---------------
# The seal key signs every seal (HMAC), so a database superuser cannot rewrite history and re-seal it
# without a secret kept outside the database. Set it explicitly in production; changing it makes every
# earlier seal fail verification. Default: derived from SECRET_KEY.
AUDIT_SEAL_KEY = env("AUDIT_SEAL_KEY", default="") or "derived:" + SECRET_KEY
# Events younger than this are left for the next run (most in-flight sequence gaps close by then).
AUDIT_SEAL_SETTLE_SECONDS = env.float("AUDIT_SEAL_SETTLE_SECONDS", default=2.0)
AUDIT_SEAL_BATCH = env.int("AUDIT_SEAL_BATCH", default=1000)
# How long a sealer waits for open transactions before sealing only up to a sequence gap.
AUDIT_SEAL_GAP_WAIT_SECONDS = env.float("AUDIT_SEAL_GAP_WAIT_SECONDS", default=2.0)
# The trail's outside witness (audit/integrity/witness.py): "file", "syslog", both comma-separated, or "none".
# Put AUDIT_WITNESS_DIR on another volume or host than the database: a witness its superuser can edit proves nothing.
AUDIT_WITNESS = env.list("AUDIT_WITNESS", default=["file"])
AUDIT_WITNESS_DIR = Path(env("AUDIT_WITNESS_DIR", default=str(VAR_DIR / "audit-witness")))
AUDIT_WITNESS_SYSLOG_ADDRESS = env("AUDIT_WITNESS_SYSLOG_ADDRESS", default="/dev/log")  # a socket, or host:port (UDP)
# GET /audit/events counts its total exactly up to this many rows, and estimates past it (the planner's figure).
AUDIT_EVENTS_EXACT_COUNT_LIMIT = env.int("AUDIT_EVENTS_EXACT_COUNT_LIMIT", default=10_000)

# Metrics (core/metrics.py): prometheus_client's multi-process directory, shared by every web and worker
# process of a host (or of a compose project: a shared volume). Empty string: single process.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics"))
# Who may read /metrics: addresses in these networks (CIDR list, checked by itirp.E002) and/or holders of
# this bearer token. Neither set: anyone who can reach the port (keep it on an internal network).
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# GET /api/v1/metrics counts events after a cached mark only; the mark passes events older than this, and
# the cached counts are rebuilt from scratch after METRICS_RECOUNT_SECONDS (see itirp/counts.py).
METRICS_COUNT_SETTLE_SECONDS = env.float("METRICS_COUNT_SETTLE_SECONDS", default=10.0)
METRICS_RECOUNT_SECONDS = env.int("METRICS_RECOUNT_SECONDS", default=3600)

# ALERTS (alerts app; rules are data edited in the admin, these are the delivery plumbing) --------------------
# The evaluator (manage.py run_alerts) reads new audit events this often, and re-checks limit usage and stale
# marks this often; the stream answers for this long before the browser reconnects (a web thread each).
ALERTS_POLL_SECONDS = env.float("ALERTS_POLL_SECONDS", default=0.25)
ALERTS_CHECK_SECONDS = env.float("ALERTS_CHECK_SECONDS", default=2.0)
ALERTS_STREAM_SECONDS = env.float("ALERTS_STREAM_SECONDS", default=25.0)
# Who gets an alert by e-mail (comma-separated); empty = the active users of the RISK_MANAGER role.
ALERTS_EMAIL_TO = env.list("ALERTS_EMAIL_TO", default=[])
ALERTS_EMAIL_MIN_SEVERITY = env("ALERTS_EMAIL_MIN_SEVERITY", default="WARNING")
ALERTS_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERTS_WEBHOOK_TIMEOUT_SECONDS", default=3.0)
ALERTS_WEBHOOK_MAX_RETRIES = env.int("ALERTS_WEBHOOK_MAX_RETRIES", default=5)
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="itirp-alerts@localhost")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
