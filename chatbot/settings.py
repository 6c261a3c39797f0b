"""Settings: the environment is read here and nowhere else (see README, "Configuration")."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ

from chatbot.dev_secrets import ensure_dev_secrets

# Django's generic classes subscriptable at run time (ModelAdmin[Contact]), as the type hints name them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "data"))

env = environ.Env()
ENV_FILE = Path(os.environ.get("ENV_FILE", BASE_DIR / ".env"))
if ENV_FILE.is_file():
    environ.Env.read_env(str(ENV_FILE))  # never overrides variables already set

DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    for _name, _value in ensure_dev_secrets(ENV_FILE, dict(os.environ)).items():
        os.environ.setdefault(_name, _value)


def _refuse(message: str) -> None:
    # One clear line on stderr, exit status 1: no traceback for an operator to dig through.
    raise SystemExit(f"configuration error: {message}")


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
JWT_SECRET = env.str("JWT_SECRET", default="")
if not SECRET_KEY:
    _refuse("DJANGO_SECRET_KEY is not set (required when DEBUG is off)")
if not JWT_SECRET:
    _refuse("JWT_SECRET is not set (required when DEBUG is off)")
if len(JWT_SECRET) < 32 and not DEBUG:
    _refuse(f"JWT_SECRET must be at least 32 characters, got {len(JWT_SECRET)}")

# /metrics: a bearer token; production refuses to start without one unless METRICS_PUBLIC=1 says
# /metrics is meant to be open (its port reachable by Prometheus alone).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)
METRICS_TOKEN_MIN_LENGTH = 16
if not DEBUG and not METRICS_TOKEN and not METRICS_PUBLIC:
    _refuse(
        "METRICS_TOKEN is not set (required when DEBUG is off; METRICS_PUBLIC=1 serves /metrics without one)"
    )
if METRICS_TOKEN and len(METRICS_TOKEN) < METRICS_TOKEN_MIN_LENGTH and not DEBUG:
    _refuse(f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters, got {len(METRICS_TOKEN)}")

SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])  # old keys, during a rotation
FERNET_KEYS = env.list("FERNET_KEYS", default=[])
ADMIN_PASSWORD = env.str("ADMIN_PASSWORD", default="")

# Loopback names are always accepted: the containers' health checks and local probes call
# http://127.0.0.1:8000/healthz, which a public-only ALLOWED_HOSTS would answer with 400.
_LOOPBACK = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = list(dict.fromkeys([*env.list("ALLOWED_HOSTS", default=[]), *_LOOPBACK]))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_prometheus",
    "django_celery_beat",
    "channels",
    "apps.accounts",
    "apps.whatsapp",
    "apps.whatsapp_web",
    "apps.conversations",
    "apps.assistant",
    "apps.audit",
    "apps.campaigns",
    "apps.alerts",
    "apps.calendar",
    "apps.analytics",
    "apps.sandbox",
    "apps.live",
    "apps.dashboard",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "chatbot.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.middleware.AuditOriginMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatbot.security_headers.ContentSecurityPolicyMiddleware",
    "chatbot.ratelimit.RateLimitHeadersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "chatbot.urls"
WSGI_APPLICATION = "chatbot.wsgi.application"
ASGI_APPLICATION = "chatbot.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
# django-prometheus's wrappers of the same backends count connections, statements, errors and their
# time (django_db_* in /metrics; chatbot/compiled_insert.py's own cursor too), at some microseconds a
# statement (docs/benchmarks.md, bench/metrics_overhead.py); DB_METRICS=0 leaves them out.
DB_METRICS = env.bool("DB_METRICS", default=True)
_INSTRUMENTED_DB = {
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
}
if DB_METRICS:
    DATABASES["default"]["ENGINE"] = _INSTRUMENTED_DB.get(
        DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"]
    )
if SQLITE:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # web, worker and beat share the file: WAL lets readers run beside one writer, and
    # IMMEDIATE transactions wait for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    # Off by default: the check is a `SELECT 1` before every request (bench/: 17-21% of a webhook's
    # time). Without it a connection broken by a database restart fails one request per thread
    # (the webhook answers 503 and Meta re-delivers) and is then replaced.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
    # Behind PgBouncer in transaction pooling a named cursor (QuerySet.iterator()) may meet another
    # server connection on its next fetch: read such loops in chunks on the client instead.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DB_DISABLE_SERVER_SIDE_CURSORS", default=False
    )
    # A pool of at most DB_POOL_SIZE connections per process (psycopg_pool; 0: none) for a worker
    # whose many threads touch the database only between long waits: the llm worker's 100 threads
    # would otherwise open and close a connection per task (a PostgreSQL backend each) or hold 100.
    # Django's pool hands a connection back on close(), so it needs CONN_MAX_AGE 0.
    if (pool_size := env.int("DB_POOL_SIZE", default=0)) > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            "timeout": env.float("DB_POOL_TIMEOUT", default=30.0),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, broker, channel layer (embedded stand-ins without it) --------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",  # django-redis, counting gets
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="chatbot"),
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
    # channels_redis waits for a socket's messages with BZPOPMIN of 5 s; redis-py 8 reads every reply
    # with a 5 s socket_timeout by default, so an idle socket's wait timed out and closed it (1011).
    # The read timeout must outlast that blocking wait; it still ends reads from a Redis that hangs.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "chatbot.cache_metrics.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# On a shared channel layer every live event rings the sockets; their poll of the table only
# catches a wake-up lost to a Redis restart. (The in-memory layer of embedded mode polls every second.)
LIVE_SAFETY_POLL_SECONDS = env.float("LIVE_SAFETY_POLL_SECONDS", default=30.0)

# --- Celery (read by celery_app.py through namespace "CELERY") ------------------------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
AMQP_BROKER = CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))
# RabbitMQ: quorum queues (replicated, what RabbitMQ recommends for work that must not be lost). A
# queue's type cannot change in place: a deployment with classic queues keeps them with `classic`.
BROKER_QUEUE_TYPE = env.str("BROKER_QUEUE_TYPE", default="quorum") if AMQP_BROKER else ""
if BROKER_QUEUE_TYPE not in ("", "quorum", "classic"):
    _refuse(f"BROKER_QUEUE_TYPE is quorum or classic; got {BROKER_QUEUE_TYPE!r}")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: one folder of message files shared by every process on
    # this machine, so web, worker and beat talk without any server.
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "control_folder": str(BROKER_DIR / "control"),  # kombu's default is ./control in the cwd
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
elif AMQP_BROKER:
    # A publish returns once RabbitMQ has the message (a webhook answers 200 only after that).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
else:
    # Redis re-delivers an unacknowledged message after the visibility timeout: it must be
    # longer than any countdown or ETA we use (retry backoff is capped at 10 minutes).
    # CELERY_VISIBILITY_TIMEOUT (seconds) exists for the fault tests, which kill workers on purpose.
    # kombu looks for such messages every `unacked_restore_interval` x `unacked_restore_throttle`
    # seconds (10 x 10 by default): with a short timeout that look comes too rarely for a test, so
    # CELERY_UNACKED_RESTORE_SECONDS, when set, is the period itself. Production keeps kombu's ~100 s:
    # the sweeper (beat, every 30 s) brings back a dead worker's work long before a 2-hour timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 3600)
    }
    if _restore_every := env.int("CELERY_UNACKED_RESTORE_SECONDS", default=0):
        # A worker killed during a look leaves kombu's lock on it for `unacked_mutex_expire` (300 s):
        # looking every second makes that likely, so the lock lapses sooner too.
        CELERY_BROKER_TRANSPORT_OPTIONS.update(
            unacked_restore_interval=_restore_every,
            unacked_restore_throttle=1,
            unacked_mutex_expire=10 * _restore_every,
        )
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "LEEWAY": 0,
}
# The dashboard's pages log in with a session (the API uses tokens).
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/login/"
# Where the dashboard's browser opens its WebSocket; empty = /ws/live/ on the page's own host (a
# proxy routes /ws/ to the ws process). `make run` points it at the ws process on port 8001.
DASHBOARD_WS_URL = env.str("DASHBOARD_WS_URL", default="")
# A login name resolves one way everywhere: folded username, else the oldest account with that e-mail.
AUTHENTICATION_BACKENDS = ["apps.accounts.backends.LoginNameBackend"]
# Login attempts reserved before the password is checked, per account and per IP (sliding
# windows in the shared rate-limit store; apps.accounts.login_throttle).
LOGIN_FAILURE_LIMITS = {
    "account": (env.int("LOGIN_MAX_FAILURES_PER_USER", default=5), 15 * 60),
    "ip": (env.int("LOGIN_MAX_FAILURES_PER_IP", default=20), 15 * 60),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "chatbot.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "chatbot.pagination.Pagination",
    "EXCEPTION_HANDLER": "chatbot.exceptions.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON in as well as out: form bodies cannot carry the nested fields and DRF would skip them
    # silently. The file imports name their own parsers (multipart, text/csv).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "PAGE_SIZE": 50,
    # How many proxies in front of us append to X-Forwarded-For; 0 trusts only REMOTE_ADDR.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "DEFAULT_THROTTLE_CLASSES": ["chatbot.ratelimit.UserRateLimit", "chatbot.ratelimit.AnonRateLimit"],
}
# Sliding-window API limits, "N/SECONDS": per logged-in user, and per IP for requests without a login.
API_RATE_LIMIT_USER = env.str("API_RATE_LIMIT_USER", default="1200/60")
API_RATE_LIMIT_ANON = env.str("API_RATE_LIMIT_ANON", default="600/60")
SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp AI platform API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVERS": [{"url": "/", "description": "This server"}],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's assets from our own static files, not a CDN: /api/docs/ works offline and under the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "chatbot.openapi.postprocess_for_clients",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CircuitStateEnum": "chatbot.circuit.STATES",
        "MessageStatusEnum": "apps.conversations.models.Message.Status",
        "ModelJobKindEnum": "apps.assistant.models.ModelPull.Kind",
        "ChannelKindEnum": "apps.whatsapp.models.Channel.Kind",
        "ConsentKindEnum": "apps.conversations.models.ConsentRecord.Kind",
        "TemplateStatusEnum": "apps.campaigns.models.Template.Status",
        "TemplateCategoryEnum": "apps.campaigns.models.Template.Category",
        "AlertRuleKindEnum": "apps.alerts.models.AlertRule.Kind",
        "AlertSeverityEnum": "apps.alerts.models.Severity",
        "AlertStateEnum": "apps.alerts.models.Alert.State",
        # Two fields are named "provider": the LLM's keeps the name it had before calendars came.
        "ProviderEnum": "apps.assistant.api.provider_serializers.PROVIDER_CHOICES",
        "CalendarProviderEnum": "apps.calendar.models.Connection.Provider",
        "CalendarConnectionStatusEnum": "apps.calendar.models.Connection.Status",
        "BookingStatusEnum": "apps.calendar.models.Booking.Status",
    },
}

CORS_ALLOWED_ORIGINS = env.list("CORS_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = False  # the API authenticates with bearer tokens, never cookies

# --- Security: production defaults; TLS usually ends at a proxy ------------------------------
# No SECURE_PROXY_SSL_HEADER: Django would believe X-Forwarded-Proto from any client. gunicorn sets
# the request's scheme from it only when the peer is in FORWARDED_ALLOW_IPS (the proxy), and Django
# reads that scheme.
SECURE_PROXY_SSL_HEADER = None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$", r"^webhooks/"]
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- Live sockets (the ws process) -----------------------------------------------------------
# An open /ws/live/ socket checks at least this often (and before it forwards events) that its
# login still stands and its user is still a member; otherwise it closes (4401 / 4403).
LIVE_SOCKET_RECHECK_SECONDS = env.float("LIVE_SOCKET_RECHECK_SECONDS", default=30.0)

# --- Campaigns: audiences ------------------------------------------------------------------
# Region (ISO 3166) for phone numbers written without +country code, until a workspace sets its own.
CAMPAIGNS_DEFAULT_REGION = env.str("CAMPAIGNS_DEFAULT_REGION", default="ES").upper()
# A background contact import: the largest CSV accepted, and how many rows are written per batch.
CAMPAIGNS_IMPORT_MAX_BYTES = env.int("CAMPAIGNS_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
CAMPAIGNS_IMPORT_BATCH = env.int("CAMPAIGNS_IMPORT_BATCH", default=2000)
# --- Campaigns: the runner (apps/campaigns/services/runner.py) --------------------------------
# Contacts turned into recipients per fan-out step; the number's queue is kept this many seconds
# long at its send rate (a customer's reply waits at most about that behind a campaign); seconds
# between two feeds of a running campaign.
CAMPAIGNS_FANOUT_BATCH = env.int("CAMPAIGNS_FANOUT_BATCH", default=2000)
CAMPAIGNS_FEED_AHEAD = env.float("CAMPAIGNS_FEED_AHEAD", default=3.0)
CAMPAIGNS_FEED_INTERVAL = env.float("CAMPAIGNS_FEED_INTERVAL", default=1.0)

# --- Calendar (apps/calendar): Google and Microsoft OAuth clients and their base URLs ---------------
# Other URLs point the providers at local stand-ins (standins/google.py, standins/microsoft.py).
GOOGLE_OAUTH_CLIENT_ID = env.str("GOOGLE_OAUTH_CLIENT_ID", default="")
GOOGLE_OAUTH_CLIENT_SECRET = env.str("GOOGLE_OAUTH_CLIENT_SECRET", default="")
GOOGLE_ACCOUNTS_URL = env.str("GOOGLE_ACCOUNTS_URL", default="https://accounts.google.com").rstrip("/")
GOOGLE_OAUTH2_URL = env.str("GOOGLE_OAUTH2_URL", default="https://oauth2.googleapis.com").rstrip("/")
GOOGLE_API_URL = env.str("GOOGLE_API_URL", default="https://www.googleapis.com").rstrip("/")
MICROSOFT_CLIENT_ID = env.str("MICROSOFT_CLIENT_ID", default="")
MICROSOFT_CLIENT_SECRET = env.str("MICROSOFT_CLIENT_SECRET", default="")
# msal accepts only https authorities; a stand-in's own CA is trusted through MICROSOFT_CA_BUNDLE.
MICROSOFT_AUTHORITY_URL = env.str(
    "MICROSOFT_AUTHORITY_URL", default="https://login.microsoftonline.com"
).rstrip("/")
MICROSOFT_TENANT = env.str("MICROSOFT_TENANT", default="common")
MICROSOFT_GRAPH_URL = env.str("MICROSOFT_GRAPH_URL", default="https://graph.microsoft.com").rstrip("/")
MICROSOFT_CA_BUNDLE = env.str("MICROSOFT_CA_BUNDLE", default="")
# Where the provider sends the staff member back (registered with the OAuth client); empty: this
# server's /calendar/callback.
CALENDAR_OAUTH_REDIRECT_URL = env.str("CALENDAR_OAUTH_REDIRECT_URL", default="")
# Seconds a started connect flow (OAuth state) stays valid.
CALENDAR_CONNECT_TTL = env.int("CALENDAR_CONNECT_TTL", default=600)
CALENDAR_HTTP_TIMEOUT = env.float("CALENDAR_HTTP_TIMEOUT", default=10.0)
# Days after an appointment ends that its .ics link (in the confirmation) keeps working.
CALENDAR_ICS_LINK_DAYS = env.int("CALENDAR_ICS_LINK_DAYS", default=7)
# The platform's public address (https://chat.example.com), for links sent to customers (.ics);
# empty: no such links are sent.
PUBLIC_URL = env.str("PUBLIC_URL", default="").rstrip("/")

# --- WhatsApp ------------------------------------------------------------------------------
WHATSAPP_GRAPH_URL = env.str("WHATSAPP_GRAPH_URL", default="https://graph.facebook.com").rstrip("/")
WHATSAPP_GRAPH_VERSION = env.str("WHATSAPP_GRAPH_VERSION", default="v21.0")
WHATSAPP_APP_SECRET = env.str("WHATSAPP_APP_SECRET", default="")
WHATSAPP_VERIFY_TOKEN = env.str("WHATSAPP_VERIFY_TOKEN", default="")
WHATSAPP_ACCESS_TOKEN = env.str("WHATSAPP_ACCESS_TOKEN", default="")
WHATSAPP_PHONE_NUMBER_ID = env.str("WHATSAPP_PHONE_NUMBER_ID", default="")
# How long a web process may keep a channel's webhook route (id, app secret) in memory; any channel
# change forgets it at once through Redis, so this only bounds writes that bypass the ORM. 0: off.
WHATSAPP_CHANNEL_CACHE_SECONDS = env.int("WHATSAPP_CHANNEL_CACHE_SECONDS", default=300)
WHATSAPP_SEND_TIMEOUT = env.float("WHATSAPP_SEND_TIMEOUT", default=15.0)
# The Graph API's circuit breaker (shared by all workers): this many server errors or timeouts in a
# row pause every call to that Graph host for the cool-down, then one trial call decides.
WHATSAPP_BREAKER_FAILURES = env.int("WHATSAPP_BREAKER_FAILURES", default=5)
WHATSAPP_BREAKER_COOLDOWN = env.float("WHATSAPP_BREAKER_COOLDOWN", default=30.0)
# Sandbox channels (kind "sandbox") talk to this local Graph API stand-in, never to Meta; its
# webhooks are signed with SANDBOX_APP_SECRET (generated into .env in development).
_SANDBOX_GRAPH_URL = env.str("WHATSAPP_SANDBOX_GRAPH_URL", default="http://127.0.0.1:8100")
WHATSAPP_SANDBOX_GRAPH_URL = _SANDBOX_GRAPH_URL.rstrip("/")
SANDBOX_APP_SECRET = env.str("SANDBOX_APP_SECRET", default="")
# Meta's verification handshake (GET /webhooks/whatsapp/) per client IP, "N/SECONDS": the verify token
# is a shared secret, so it must not be guessable by asking fast.
WHATSAPP_VERIFY_RATE = env.str("WHATSAPP_VERIFY_RATE", default="10/60")
WHATSAPP_WEBHOOK_MAX_BYTES = 1024 * 1024
# The transport per channel kind (conversations never imports whatsapp; it asks this table).
WHATSAPP_TRANSPORTS = {
    "cloud": "apps.whatsapp.cloud.CloudTransport",
    "sandbox": "apps.whatsapp.cloud.CloudTransport",  # the sandbox speaks Cloud API to the stand-in
    "web": "apps.whatsapp_web.transport.WebTransport",
}
# WhatsApp Web (channels of kind "web", driven by the worker-web process; docs/whatsapp-web.md).
# The page to open: WhatsApp Web itself, or a local stand-in of it (standins/whatsapp_web.py).
WHATSAPP_WEB_URL = env.str("WHATSAPP_WEB_URL", default="https://web.whatsapp.com/")
# The wa-js bundle injected into the page (deploy/wa-js/fetch.sh) and its SHA-256; a bundle whose hash
# differs is refused.
WHATSAPP_WEB_BRIDGE_BUNDLE = env.str(
    "WHATSAPP_WEB_BRIDGE_BUNDLE", default=str(BASE_DIR / "deploy" / "wa-js" / "wppconnect-wa.js")
)
WHATSAPP_WEB_BRIDGE_SHA256 = env.str("WHATSAPP_WEB_BRIDGE_SHA256", default="")
# WhatsApp Web versions the bridge is known to work with (comma-separated prefixes, e.g. "2.3000.");
# another version sets the session `outdated` and nothing is sent. Empty: no check.
WHATSAPP_WEB_VERSIONS = env.str("WHATSAPP_WEB_VERSIONS", default="")
WHATSAPP_WEB_CHROMIUM = env.str("WHATSAPP_WEB_CHROMIUM", default="/usr/bin/chromium")
# Browser profiles (the linked sessions), one folder per channel, mode 0700.
WHATSAPP_WEB_PROFILE_DIR = Path(env.str("WHATSAPP_WEB_PROFILE_DIR", default=str(DATA_DIR / "whatsapp_web")))
# How long a sender waits for the browser to take and send a message (typing included).
WHATSAPP_WEB_SEND_TIMEOUT = env.float("WHATSAPP_WEB_SEND_TIMEOUT", default=60.0)
# Typing before a send: this many milliseconds per character, between the bounds, +-20% at random.
WHATSAPP_WEB_TYPING_MS_PER_CHAR = env.float("WHATSAPP_WEB_TYPING_MS_PER_CHAR", default=40.0)
WHATSAPP_WEB_TYPING_MIN_MS = env.int("WHATSAPP_WEB_TYPING_MIN_MS", default=800)
WHATSAPP_WEB_TYPING_MAX_MS = env.int("WHATSAPP_WEB_TYPING_MAX_MS", default=8000)
# At least this many seconds (plus a random 0-100%) between two sends of one channel.
WHATSAPP_WEB_MIN_GAP = env.float("WHATSAPP_WEB_MIN_GAP", default=3.0)
# A page that has not answered a heartbeat for this long is restarted.
WHATSAPP_WEB_STALE_SECONDS = env.float("WHATSAPP_WEB_STALE_SECONDS", default=90.0)
# Reconnect backoff after a crash or a lost page: doubles from the first to the last, seconds.
WHATSAPP_WEB_BACKOFF_FIRST = env.float("WHATSAPP_WEB_BACKOFF_FIRST", default=2.0)
WHATSAPP_WEB_BACKOFF_MAX = env.float("WHATSAPP_WEB_BACKOFF_MAX", default=300.0)
# worker-web drives the pages in slices of this many seconds (the browser stays open between them).
WHATSAPP_WEB_SLICE = env.float("WHATSAPP_WEB_SLICE", default=50.0)
# Media received on WhatsApp Web is downloaded through the browser when it arrives (WhatsApp Web cannot
# be asked for it later the way the Cloud API can) and kept here, one folder per channel, mode 0700;
# files larger than the Cloud API's cap are not downloaded (the message says "media unavailable").
WHATSAPP_WEB_MEDIA_DIR = Path(env.str("WHATSAPP_WEB_MEDIA_DIR", default=str(DATA_DIR / "whatsapp_web_media")))
WHATSAPP_WEB_MEDIA_MAX_BYTES = env.int("WHATSAPP_WEB_MEDIA_MAX_BYTES", default=100 * 1024 * 1024)
WHATSAPP_WEB_MEDIA_TIMEOUT = env.float("WHATSAPP_WEB_MEDIA_TIMEOUT", default=60.0)
# Files sent on WhatsApp Web (uploaded, or fetched from a link) are at most this large: the bytes cross
# to the page as a data URL, whole, so the bound is also worker-web's memory per send.
WHATSAPP_WEB_SEND_MAX_BYTES = env.int("WHATSAPP_WEB_SEND_MAX_BYTES", default=16 * 1024 * 1024)
# Several worker-web processes: each channel is driven by the one holding its lease (a row in
# PostgreSQL), renewed every few seconds and taken over by another process once it has expired.
WHATSAPP_WEB_LEASE_SECONDS = env.float("WHATSAPP_WEB_LEASE_SECONDS", default=60.0)
# A process without the channel's browser profile on its disk waits this much longer before taking a
# free or expired channel, so the one with the profile (no new QR scan) gets it first.
WHATSAPP_WEB_PROFILE_PREFERENCE_SECONDS = env.float("WHATSAPP_WEB_PROFILE_PREFERENCE_SECONDS", default=60.0)
# At most this many channels per worker-web process (0: no limit).
WHATSAPP_WEB_MAX_CHANNELS_PER_WORKER = env.int("WHATSAPP_WEB_MAX_CHANNELS_PER_WORKER", default=0)
# Catch-up at (re)connect: the unread messages of at most this many chats (most recent first), at most
# this many per chat, are fetched and stored (once each, by WhatsApp's id).
WHATSAPP_WEB_CATCH_UP_CHATS = env.int("WHATSAPP_WEB_CATCH_UP_CHATS", default=50)
WHATSAPP_WEB_CATCH_UP_MESSAGES = env.int("WHATSAPP_WEB_CATCH_UP_MESSAGES", default=50)
# Outbound queue: a row stuck in `processing` this long without an answer is settled by the sweeper.
OUTBOUND_PROCESSING_TIMEOUT = env.int("OUTBOUND_PROCESSING_TIMEOUT", default=600)
# A sender waits at most this long for a row's pacing slot (holding no claim); further slots are
# left for a later pass.
OUTBOUND_MAX_INLINE_WAIT = env.float("OUTBOUND_MAX_INLINE_WAIT", default=2.0)
# The per-number sender (services/sender.py): a task runs this many seconds, then hands over.
OUTBOUND_SENDER_SLICE = env.float("OUTBOUND_SENDER_SLICE", default=20.0)
# Its lease on the number; a killed sender's number is taken over this long after its last renewal.
OUTBOUND_SENDER_LEASE = env.float("OUTBOUND_SENDER_LEASE", default=15.0)
# Transport calls in flight per sender (each thread holds a database connection). SQLite serialises
# writes, so the embedded default sends one at a time.
OUTBOUND_SENDER_THREADS = env.int(
    "OUTBOUND_SENDER_THREADS",
    default=1 if SQLITE else 16,
)
# Fraction of a number's send rate the pacer uses: at 0.99, any `rate` + 1 slots span 1.0101 s, room for
# the jitter between a send's start and its arrival at Meta (bench/: pacing at exactly 80/s drew 130429s).
OUTBOUND_RATE_HEADROOM = env.float("OUTBOUND_RATE_HEADROOM", default=0.99)
# Each sender's send window (services/sender.py: SendWindow) lets `send_rate` sends start per second and
# takes a send's token back 1 s after its answer, or 1 s + this slack after its start if the answer is
# slower. 0.01 matches the headroom's gap, so it costs nothing on time; a value above the Graph API's
# answer time makes the window strict (no 130429 possible) at the cost of rate / (1 + answer time).
OUTBOUND_WINDOW_SLACK = env.float("OUTBOUND_WINDOW_SLACK", default=0.01)
# Bot replies per customer per window (N/SECONDS, sliding window): a customer flooding the number
# has every message stored, but is answered at most this often; each late reply covers the backlog.
INBOUND_REPLY_RATE = env.str("INBOUND_REPLY_RATE", default="6/60")
# Tries at processing one customer message before it is set aside (outages do not count), so a
# message that always fails cannot hold up its sender's later ones.
INBOUND_MAX_ATTEMPTS = env.int("INBOUND_MAX_ATTEMPTS", default=5)
# Tries at the bot's reply to one customer turn (outages do not count); then the conversation waits
# for a person (pending_human) and nothing asks the LLM for that turn again.
REPLY_MAX_ATTEMPTS = env.int("REPLY_MAX_ATTEMPTS", default=3)
# Adaptive debounce: a lone customer message is answered after this short wait (seconds); once a
# burst is under way each message waits the workspace's debounce for the next, but the turn's reply
# never waits longer than REPLY_BURST_MAX_WAIT after its first message.
REPLY_FIRST_WAIT = env.float("REPLY_FIRST_WAIT", default=0.3)
REPLY_BURST_MAX_WAIT = env.float("REPLY_BURST_MAX_WAIT", default=6.0)
# A customer writing within this many minutes of their conversation being closed reopens it (same
# thread, same history); later, or with 0, the message starts a new conversation.
CONVERSATION_REOPEN_MINUTES = env.int("CONVERSATION_REOPEN_MINUTES", default=1440)
# Messages a customer writes in a WhatsApp group the business number is in are stored as group
# messages and never answered privately; True answers them in the participant's private chat.
INBOUND_GROUP_REPLIES = env.bool("INBOUND_GROUP_REPLIES", default=False)

# --- Assistant (LLM providers) -------------------------------------------------------------
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch its price list
AI_FALLBACK_ORDER = env.list("AI_FALLBACK_ORDER", default=[])
# Each provider's circuit breaker, shared by all workers: opens after this many failures in a row,
# then one trial call after the cool-down (seconds).
LLM_BREAKER_FAILURES = env.int("LLM_BREAKER_FAILURES", default=3)
LLM_BREAKER_COOLDOWN = env.float("LLM_BREAKER_COOLDOWN", default=30.0)


# Bounds on LLM calls (apps/assistant/admission.py), shared by every worker: per provider, requests a
# minute ("gemini=15,openai=500") and calls at once; per workspace, calls in flight (waiting for a rate
# slot included), so one tenant's burst leaves worker threads for the others. A call that cannot start
# within LLM_MAX_SLOT_WAIT seconds is re-queued (after LLM_DEFER_SECONDS when a place is full) instead of
# meeting the provider's 429s; the rate is paced at LLM_RATE_HEADROOM of the quota.
def _counts(name: str) -> dict[str, int]:
    """ "gemini=15,openai=500" -> {"gemini": 15, "openai": 500}; a bad value stops the start."""
    raw: dict[str, str] = env.dict(name, default={})
    try:
        return {key.strip(): int(value) for key, value in raw.items()}
    except ValueError as exc:
        raise SystemExit(
            f"configuration error: {name} is written provider=N,provider=N; got {raw!r}"
        ) from exc


LLM_PROVIDER_RPM = _counts("LLM_PROVIDER_RPM")
LLM_PROVIDER_CONCURRENCY = _counts("LLM_PROVIDER_CONCURRENCY")
LLM_WORKSPACE_MAX_IN_FLIGHT = env.int("LLM_WORKSPACE_MAX_IN_FLIGHT", default=80)
LLM_MAX_SLOT_WAIT = env.float("LLM_MAX_SLOT_WAIT", default=30.0)
LLM_DEFER_SECONDS = env.float("LLM_DEFER_SECONDS", default=1.0)
LLM_RATE_HEADROOM = env.float("LLM_RATE_HEADROOM", default=0.9)
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
XAI_API_KEY = env.str("XAI_API_KEY", default="")
OLLAMA_BASE_URL = env.str("OLLAMA_BASE_URL", default="http://127.0.0.1:11434")
LMSTUDIO_BASE_URL = env.str("LMSTUDIO_BASE_URL", default="http://127.0.0.1:1234")
# Outbound URLs set through the API may reach only public addresses, the exact host:port of the three
# URLs above, and these hosts / CIDRs (e.g. "gpu-box,10.0.5.0/24"): see chatbot/egress.py.
EGRESS_ALLOWED_NETWORKS = env.list("EGRESS_ALLOWED_NETWORKS", default=[])

# --- Analytics ------------------------------------------------------------------------------
# Each roll-up refresh (beat, every 5 minutes) counts again this many of the last local days, so late
# delivery statuses and late commits reach the roll-ups.
ANALYTICS_ROLLUP_REFRESH_DAYS = env.int("ANALYTICS_ROLLUP_REFRESH_DAYS", default=3)

# --- E-mail (alert notifications) -----------------------------------------------------------
# One URL, e.g. smtp+tls://user:password@smtp.example.com:587 (django-environ's email_url); development
# prints e-mails to the console. EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, ... come from it.
globals().update(env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="alerts@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# A web request's whole call to a workspace's model server (seconds), and how many such calls one
# workspace may have open at once; longer work (model load, Ollama pull) runs on the `local_models`
# queue, at most LOCAL_MODEL_MAX_JOBS at once per workspace.
LOCAL_MODEL_WEB_TIMEOUT = env.float("LOCAL_MODEL_WEB_TIMEOUT", default=5.0)
LOCAL_MODEL_WEB_CONCURRENCY = env.int("LOCAL_MODEL_WEB_CONCURRENCY", default=2)
LOCAL_MODEL_MAX_JOBS = env.int("LOCAL_MODEL_MAX_JOBS", default=2)

# `manage.py bootstrap` runs accounts' own step, then each of these with the default workspace
# (accounts imports no other app, so later apps add their steps here).
BOOTSTRAP_STEPS = ["apps.whatsapp.services.channel_bootstrap"]

# --- I18n ---------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Serve straight from the source folders when collectstatic has not run (development, tests);
# production images run collectstatic and can turn this off.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# LOG_FORMAT=json: one JSON object per line with the request, task, workspace and conversation ids
# (chatbot/log_context.py); text (the default) is the plain format. Both mask known secrets.
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in ("text", "json"):
    _refuse(f"LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "chatbot.log_context.ContextFilter"}},
    "formatters": {
        "text": {
            "()": "chatbot.log_context.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "chatbot.log_context.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
