"""Stockline settings, read from the environment with django-environ.

With no environment variables the hub runs on a SQLite file and an embedded Celery broker under
`var/`, so a newcomer needs no server. DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

import base64
import hashlib
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-stockline-development-key-do-not-use-in-production"

# Fernet keys for channel credentials at rest, comma-separated: the first encrypts, all decrypt, so a new
# key goes first and the old one stays until `manage.py rotate_secrets` has re-encrypted every row.
# Generate one with `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
STOCKLINE_SECRET_KEYS = env.list("STOCKLINE_SECRET_KEYS", default=[])
if not STOCKLINE_SECRET_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("STOCKLINE_SECRET_KEYS must be set when DEBUG is off.")
    # Development only: a key derived from SECRET_KEY, so a bare clone runs; changing SECRET_KEY then
    # makes the stored credentials unreadable (re-enter them, or set STOCKLINE_SECRET_KEYS).
    STOCKLINE_SECRET_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(f"stockline-secrets:{SECRET_KEY}".encode()).digest()).decode()
    ]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "simple_history",
    "axes",
    "inventory",
    "orders",
    "channels.apps.ChannelsConfig",
]
# The sandbox (emulated marketplaces) and the development tools (the demo shop, the benchmarks, the load test)
# are for a developer's machine and the tests: installed with DEBUG on, or with STOCKLINE_DEVTOOLS=true, which
# `make run`, `make test`, the tests' settings and .ci/run set. Production sets DEBUG=false (the default is on),
# so it installs neither unless STOCKLINE_DEVTOOLS is set too. The hub never imports them.
STOCKLINE_DEVTOOLS = env.bool("STOCKLINE_DEVTOOLS", default=False) or DEBUG
if STOCKLINE_DEVTOOLS:
    INSTALLED_APPS += ["sandbox", "devtools"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Who made each change recorded in the history of channels, mappings and listings.
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# History is an audit trail: reverting from it would bypass the services that keep channels in step.
SIMPLE_HISTORY_REVERT_DISABLED = True

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out user is refused before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failed attempts for one username from one
# address, that pair is locked for LOGIN_COOLOFF_MINUTES; a successful login clears the count.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
# Behind N reverse proxies that append to X-Forwarded-For, the client is the Nth address from the right.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

ROOT_URLCONF = "config.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'stockline.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share one file: wait for locks instead of failing,
    # and take the write lock at BEGIN so two writers never deadlock on lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Row estimates lag behind a busy listings table and push small statements into JIT compilation,
        # which costs ~50 ms each: the push planning after one order then misses its 20 ms budget.
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by the web process and the worker on one machine (the debounce keys live here).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# The one zone every time shown to staff is in (pages, the dashboard's days); stored times stay UTC.
# UTC by default until the channel page shows Last Order Sync in UTC: its 0001-01-01 00:00 UTC default is
# before year 1 in Europe/London's 1st-century offset, and rendering it there fails.
TIME_ZONE = env.str("STOCKLINE_TIME_ZONE", default="Europe/London").strip()
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"STOCKLINE_TIME_ZONE must be an IANA time zone such as Europe/London, not {TIME_ZONE!r}."
    ) from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The admin's favicon and its stylesheet (templates/admin/base_site.html).
STATICFILES_DIRS = [BASE_DIR / "static"]

# Celery: Redis in production, kombu's filesystem transport (no server) by default.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A task whose whole worker died (SIGKILL, a lost machine) is delivered again once its message has gone
    # unacknowledged for the visibility timeout; every worker looks for such messages every 5 s. Redis cannot
    # tell a dead worker's message from a busy one's, so a task still running after 45 s is delivered again
    # too: every task that can run that long (order download, push, FBA, each despatch message) holds a lock
    # renewed by a heartbeat (channels.locks), which the second delivery finds held and waits its turn behind,
    # never running alongside (the listing download has its in-progress claim). A countdown longer than the
    # timeout would be delivered again and again while it waits, so none is (TASK_COUNTDOWN_MAX).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 45, "unacked_restore_interval": 5, "unacked_restore_throttle": 1,
    }
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # A host name only keeps kombu from warning; the filesystem transport ignores it.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcasts (remote control, ping) otherwise land in ./control beside manage.py.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_TIME_LIMIT = 10 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 9 * 60
# Every task takes ids and is safe to run twice, so a task whose worker dies is run again. (The embedded
# broker forgets the message of a task whose whole worker was killed: the next worker to start queues the
# runs it left "running" again, channels.tasks.interrupted_runs_resume.)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The longest countdown a task retries after: below the Redis visibility timeout (see above).
TASK_COUNTDOWN_MAX = 30
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "channels.tasks.orders_*": {"queue": "orders"},
    "channels.tasks.inventory_*": {"queue": "inventory"},
    "channels.tasks.listings_*": {"queue": "listings"},
    "channels.tasks.despatch_*": {"queue": "despatch"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes announces its version at every start, commands included; lockouts still log as warnings.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}

# The hub's tax rates in percent (prices include tax) by destination country, used for channels whose
# "Use channel tax" is off. HUB_TAX_RATES="default=20,IE=23,FR=20".
HUB_TAX_RATES = {"default": "20", **env.dict("HUB_TAX_RATES", default={})}

# Where the demo channels and the tests find the emulated marketplace APIs.
SANDBOX_URL = env.str("SANDBOX_URL", default="http://127.0.0.1:8100")
# Credentials go only to the hosts each channel kind declares (channels/connectors/<kind>/connector.py),
# over https. Hosts named here are allowed too, for every kind: a staging server, or the sandbox. A
# loopback host named here may use plain http (the sandbox on this machine). Off DEBUG nothing is added.
CHANNEL_EXTRA_ALLOWED_HOSTS = [
    host.lower()
    for host in env.list("CHANNEL_EXTRA_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
]
# Bounds on every exchange with a channel, whatever it sends (defaults as channels.connectors.base.HttpBounds):
# an API call, its redirects and its whole answer end within CHANNEL_HTTP_DEADLINE_SECONDS even when the answer
# drips, and at most CHANNEL_HTTP_MAX_RESPONSE_BYTES are read, on the wire and once decompressed. A report or
# feed-result document has its own, larger bounds; its deadline stays under the tasks' soft time limit.
CHANNEL_HTTP_DEADLINE_SECONDS = env.float("CHANNEL_HTTP_DEADLINE_SECONDS", default=60)
CHANNEL_HTTP_CONNECT_TIMEOUT = env.float("CHANNEL_HTTP_CONNECT_TIMEOUT", default=5)
CHANNEL_HTTP_MAX_RESPONSE_BYTES = env.int("CHANNEL_HTTP_MAX_RESPONSE_BYTES", default=32 * 1024 * 1024)
CHANNEL_HTTP_DOCUMENT_DEADLINE_SECONDS = env.float("CHANNEL_HTTP_DOCUMENT_DEADLINE_SECONDS", default=300)
CHANNEL_HTTP_MAX_DOCUMENT_BYTES = env.int("CHANNEL_HTTP_MAX_DOCUMENT_BYTES", default=256 * 1024 * 1024)
if min(CHANNEL_HTTP_DEADLINE_SECONDS, CHANNEL_HTTP_CONNECT_TIMEOUT, CHANNEL_HTTP_MAX_RESPONSE_BYTES,
       CHANNEL_HTTP_DOCUMENT_DEADLINE_SECONDS, CHANNEL_HTTP_MAX_DOCUMENT_BYTES) <= 0:
    raise ImproperlyConfigured("The CHANNEL_HTTP_* deadlines and sizes must be positive.")
# "published": each connector keeps under its channel's published quotas. "off": only for benchmarks
# against the sandbox; a real marketplace throttles or suspends a seller who ignores its quotas.
CHANNEL_RATE_LIMITS = env.str("CHANNEL_RATE_LIMITS", default="published")
if CHANNEL_RATE_LIMITS not in ("published", "off"):
    raise ImproperlyConfigured("CHANNEL_RATE_LIMITS must be 'published' or 'off'.")
# The address the channels reach this hub at from the internet, e.g. https://hub.example.com. Set, the channels
# that send order webhooks (EKM) are subscribed to /webhooks/... under it when they are saved; empty, none is,
# and orders arrive by the periodic download alone (which stays as the safety net either way).
STOCKLINE_PUBLIC_URL = env.str("STOCKLINE_PUBLIC_URL", default="").strip().rstrip("/")
if STOCKLINE_PUBLIC_URL and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", STOCKLINE_PUBLIC_URL):
    raise ImproperlyConfigured("STOCKLINE_PUBLIC_URL must be an http(s) address such as https://hub.example.com.")
if STOCKLINE_PUBLIC_URL.startswith("http://") and not DEBUG:
    # Off DEBUG plain http is redirected to https (SECURE_SSL_REDIRECT), which a channel's POST does not follow.
    raise ImproperlyConfigured("STOCKLINE_PUBLIC_URL must start with https:// when DEBUG is off.")

if not DEBUG:
    # Behind a proxy that terminates TLS, set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https (the
    # proxy must overwrite that header); without it a client could claim HTTPS by sending the header.
    _proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
    if _proxy_ssl_header:
        if len(_proxy_ssl_header) != 2:
            raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,value: HTTP_X_FORWARDED_PROTO,https.")
        SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    if not SECURE_SSL_REDIRECT:
        # The operator said the proxy redirects HTTP to HTTPS itself.
        SILENCED_SYSTEM_CHECKS = ["security.W008"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
