"""One settings module, configured by environment variables.

With nothing set it runs embedded: SQLite, an in-memory channel layer, Celery tasks run eagerly
in-process, local-memory cache and files on disk. Each variable switches one part to its
production engine (see README and .env.example).
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The environment wins over the file; DJANGO_ENV_FILE names another file (or none that exists).
environ.Env.read_env(os.environ.get("DJANGO_ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env(
        "DJANGO_SECRET_KEY", default="dev-only-secret-key-not-for-production-use-0123456789abcdef"
    )
else:
    # Production has no default: a missing secret fails at start, not later.
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
    if len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY (at least 32 random characters) when DJANGO_DEBUG=0."
        )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "ninja",
    "marketplace.accounts",
    "inbox",
    "orders",
    "notifications",
    "moderation",
    "sellers",
    "attachments",
    "outbox",
]

MIDDLEWARE = [
    # First: a database outage, wherever it surfaces, is a 503 (marketplace/api_errors.py).
    "marketplace.api_errors.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "marketplace.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "marketplace.accounts.middleware.UserTimezoneMiddleware",
    "marketplace.api_errors.ApiJsonErrorsMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
ASGI_APPLICATION = "marketplace.asgi.application"
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
            ],
        },
    },
]

# --- Database: SQLite file by default, PostgreSQL when DATABASE_URL says so.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a test's daphne subprocess can share the test database; one
    # per test process, so that two runs side by side do not replace each other's.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
else:
    # Under ASGI persistent connections leak across threads: take them from a pool instead
    # (connecting costs ~3 ms a request), and give them back after each request.
    # With PostgreSQL away, a request waits at most DATABASE_POOL_TIMEOUT seconds for a
    # connection, then answers 503 (marketplace.api_errors); a pooled connection is checked
    # before use, so the ones broken by the outage are dropped instead of failing a request, and
    # reconnection attempts give up after 2 s, so the next request tries again at once rather
    # than after a long backoff (docs/ARCHITECTURE.md, "When PostgreSQL or Redis goes away").
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Django passes psycopg_pool's check_connection to the pool when health checks are on.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=1),
        # Each request and websocket handshake holds one while its sync code runs; 10 ran dry
        # in the reconnect storm (docs/RELIABILITY.md), 30 did not.
        "max_size": env.int("DATABASE_POOL_MAX", default=30),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),
        "reconnect_timeout": 2.0,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
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
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

# --- Files: local folder by default, an S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,  # private objects; reads go through signed URLs
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=300),
            "signature_version": "s3v4",
            "file_overwrite": False,
        },
    }

# --- Attachments (docs/ARCHITECTURE.md, "Attachments")
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=1024**3)
ATTACHMENTS_PER_MESSAGE = env.int("ATTACHMENTS_PER_MESSAGE", default=10)
# Browsers upload to the bucket in parts of this size (S3's minimum is 5 MiB), several at once.
ATTACHMENT_PART_BYTES = env.int("ATTACHMENT_PART_BYTES", default=8 * 1024**2)
# Presigned upload and download URLs last this long.
ATTACHMENT_URL_EXPIRE_SECONDS = env.int("ATTACHMENT_URL_EXPIRE_SECONDS", default=300)
ATTACHMENT_ARCHIVE_AFTER_DAYS = env.int("ATTACHMENT_ARCHIVE_AFTER_DAYS", default=730)
ATTACHMENT_ARCHIVE_STORAGE_CLASS = env("ATTACHMENT_ARCHIVE_STORAGE_CLASS", default="GLACIER")
ATTACHMENT_RESTORE_HOURS = env.int("ATTACHMENT_RESTORE_HOURS", default=12)
ATTACHMENT_RESTORED_DAYS = env.int("ATTACHMENT_RESTORED_DAYS", default=7)
ATTACHMENT_PURGE_AFTER_DAYS = env.int("ATTACHMENT_PURGE_AFTER_DAYS", default=1095)
# Types are sniffed from the content (libmagic), never taken from the name.
ATTACHMENT_ALLOWED_TYPES = env.list(
    "ATTACHMENT_ALLOWED_TYPES",
    default=[
        "image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/tiff",
        "image/vnd.adobe.photoshop", "application/pdf", "application/postscript", "text/plain",
        "text/csv", "application/zip", "application/x-7z-compressed", "application/x-rar",
        "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
        "audio/mpeg", "audio/x-wav", "audio/ogg", "audio/flac", "audio/x-m4a",
        "video/mp4", "video/quicktime", "video/webm", "video/x-matroska",
        "font/ttf", "font/otf", "font/woff", "font/woff2",
    ],
)  # fmt: skip

# --- Redis: channel layer and cache. Unset means in-memory (one process only).
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: one PUBLISH per group_send. Loss on a Redis blip is covered by the event log.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env("CHANNEL_LAYER_PREFIX", default="inbox")},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: eager in-process unless a broker is configured.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# A task is acknowledged after it ran, and handed to another worker if its worker died mid-way:
# every task must be idempotent (see docs/RELIABILITY.md). A task not acknowledged within the
# visibility timeout is delivered again, so every countdown must stay well below it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Publishing gives up after one quick retry when the broker is down (instead of ~6 s of
# backoff): the task waits in the outbox, and the request that wrote it answers at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BEAT_SCHEDULE = {
    "prune-event-log": {"task": "inbox.prune_event_log", "schedule": 6 * 3600},
    "expire-offers": {"task": "orders.expire_offers", "schedule": 60},
    # The incremental updates keep the figures current; the nightly rebuild repairs any miss.
    "recompute-response-figures": {"task": "inbox.recompute_response_figures", "schedule": 24 * 3600},
    "sweep-notifications": {"task": "notifications.sweep", "schedule": 60},
    "finish-attachment-restores": {"task": "attachments.finish_restores", "schedule": 600},
    "archive-idle-attachments": {"task": "attachments.archive_idle", "schedule": 24 * 3600},
    "purge-old-attachments": {"task": "attachments.purge_old", "schedule": 24 * 3600},
}

# --- Outbox (outbox.services): entries being published are leased this long; a failed entry
# is tried again after 1, 2, ... up to this many seconds.
OUTBOX_LEASE_SECONDS = 30
OUTBOX_RETRY_MAX_SECONDS = env.int("OUTBOX_RETRY_MAX_SECONDS", default=5)

# --- Email: printed on the console unless EMAIL_URL is set (smtp://user:pass@host:587).
EMAIL_URL = env("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Marketplace Inbox <inbox@localhost>")
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# --- Notifications
# Fan-out waits this long after a notification, so a burst goes out as one email per recipient.
NOTIFICATION_BATCH_SECONDS = env.int("NOTIFICATION_BATCH_SECONDS", default=10)
# The email about unread messages waits this long, then goes out as one digest of what is still unread.
NOTIFICATION_EMAIL_DELAY_SECONDS = env.int("NOTIFICATION_EMAIL_DELAY_SECONDS", default=300)
# Notifications whose fan-out has not run after this long are re-queued by the sweep (beat).
NOTIFICATION_SWEEP_AFTER_SECONDS = env.int("NOTIFICATION_SWEEP_AFTER_SECONDS", default=120)
# A delivery claimed longer ago than this (more than a task may run) was abandoned by a worker
# that died before sending: the sweep re-queues it and the next fan-out sends it.
NOTIFICATION_CLAIM_LEASE_SECONDS = env.int(
    "NOTIFICATION_CLAIM_LEASE_SECONDS", default=CELERY_TASK_TIME_LIMIT + 30
)
# Web Push (VAPID): without a private key the push channel is off. `make vapid-keys` prints a pair.
WEBPUSH_VAPID_PUBLIC_KEY = env("WEBPUSH_VAPID_PUBLIC_KEY", default="")
WEBPUSH_VAPID_PRIVATE_KEY = env("WEBPUSH_VAPID_PRIVATE_KEY", default="")
WEBPUSH_VAPID_SUBJECT = env("WEBPUSH_VAPID_SUBJECT", default="mailto:inbox@localhost")
WEBPUSH_TIMEOUT_SECONDS = 10

# --- Security (docs/SECURITY.md)
if not DEBUG and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    # "*" would also accept websocket handshakes from any Origin (cross-site socket hijacking).
    raise ImproperlyConfigured(
        "Set DJANGO_ALLOWED_HOSTS to the site's host names (never '*') when DJANGO_DEBUG=0."
    )
# Old keys still accepted for signatures during a rotation (sessions, signed links).
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"  # Strict would drop the session on links from emails
CSRF_COOKIE_SAMESITE = "Lax"
# The CSRF cookie stays readable: the page scripts send it in X-CSRFToken.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host-: the browser only accepts it from HTTPS, for the whole site, never for a parent domain.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # The proxy in front of daphne terminates TLS and must set (not pass on) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds the whole registrable domain to HTTPS for months: the operator's
        # decision (DJANGO_SECURE_HSTS_PRELOAD=1), not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Content-Security-Policy, sent on every response by marketplace.security.ContentSecurityPolicyMiddleware,
# which adds this host's websocket origin to connect-src and the attachment bucket's origin
# (presigned uploads, thumbnails, downloads) to connect-src and img-src.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    # Label colours are user-chosen and set in style attributes; <style> elements stay forbidden.
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
# Extra origins for the bucket (a CDN or custom domain in front of it); the bucket's own origin
# is derived from the storage settings.
CSP_STORAGE_ORIGINS = env.list("CSP_STORAGE_ORIGINS", default=[])
# Browsers POST violation reports here (logged, 204); empty turns reporting off.
CSP_REPORT_PATH = "/csp-report/"
CSP_REPORT_MAX_BYTES = 16 * 1024

# Incoming websocket frames and messages are refused above this size (client frames are small
# JSON: inbox.consumers caps them at 4,096 characters). `runserver` reads these; daphne's command
# line gets the same numbers (Dockerfile, docker-compose.yml, tests/servers.py).
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = 64 * 1024
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = 64 * 1024

# --- Moderation: scanners by dotted path; the strongest finding decides.
MODERATION_SCANNERS = env.list(
    "MODERATION_SCANNERS",
    default=[
        "moderation.scanners.contact_details",
        "moderation.scanners.off_platform",
        "moderation.scanners.spam",
    ],
)
MODERATION_HOLD_SCORE = 0.5
MODERATION_REJECT_SCORE = 1.0
# Messaging limit: new people a user may write to per hour (stricter for new accounts).
MODERATION_NEW_CONTACTS_PER_HOUR = env.int("MODERATION_NEW_CONTACTS_PER_HOUR", default=10)
MODERATION_NEW_ACCOUNT_NEW_CONTACTS_PER_HOUR = env.int(
    "MODERATION_NEW_ACCOUNT_NEW_CONTACTS_PER_HOUR", default=3
)
MODERATION_NEW_ACCOUNT_DAYS = env.int("MODERATION_NEW_ACCOUNT_DAYS", default=3)
# What reaching the limit again brings, step by step, within MODERATION_LADDER_DAYS; admins lift steps.
# "suspension:72" is 72 hours; a bare "suspension" is permanent.
MODERATION_LIMIT_LADDER = env.list(
    "MODERATION_LIMIT_LADDER", default=["notice", "warning", "suspension:72", "suspension"]
)
MODERATION_LADDER_DAYS = env.int("MODERATION_LADDER_DAYS", default=30)
# Regions whose national formats the phone scanner reads numbers without a country code in.
MODERATION_PHONE_REGIONS = env.list(
    "MODERATION_PHONE_REGIONS", default=["US", "GB", "FR", "DE", "ES", "IT", "IN", "NG", "BR", "AU"]
)
# Spam: the same text (names and digits aside) to more than N people within the window is held.
MODERATION_BLAST_RECIPIENTS = env.int("MODERATION_BLAST_RECIPIENTS", default=5)
MODERATION_BLAST_WINDOW_SECONDS = env.int("MODERATION_BLAST_WINDOW_SECONDS", default=3600)
MODERATION_BLAST_MIN_LENGTH = 40
MODERATION_MAX_LINKS = env.int("MODERATION_MAX_LINKS", default=4)
# New accounts sending more than N messages within the window are held.
MODERATION_NEW_ACCOUNT_BURST = env.int("MODERATION_NEW_ACCOUNT_BURST", default=20)
MODERATION_BURST_WINDOW_SECONDS = 600

# --- Product rules
MESSAGE_MAX_LENGTH = env.int("MESSAGE_MAX_LENGTH", default=5000)
# Abuse limits (marketplace/ratelimit.py): fixed windows counted in the cache (Redis), failing
# open when it is down; 0 turns a limit off. Sends beyond the rate are refused (429), not stored.
MESSAGE_RATE_PER_MINUTE = env.int("MESSAGE_RATE_PER_MINUTE", default=120)
MESSAGE_RATE_WINDOW_SECONDS = 60
# Failed logins (login page and POST /api/v1/auth/token): beyond either count, even the right
# password is refused until the window ends; a successful login clears its username's count.
# Per IP is per REMOTE_ADDR: behind a proxy, run daphne with --proxy-headers.
LOGIN_FAILURES_PER_USERNAME = env.int("LOGIN_FAILURES_PER_USERNAME", default=5)
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=20)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
RATE_LIMIT_KEY_PREFIX = "ratelimit"
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=30)
EMAIL_VERIFICATION_MAX_AGE_DAYS = 3
EVENT_LOG_RETENTION_DAYS = env.int("EVENT_LOG_RETENTION_DAYS", default=30)
EVENTS_PAGE_MAX = 500
# Video calls: {room} becomes a unique random room name per call.
CALL_URL_TEMPLATE = env("CALL_URL_TEMPLATE", default="https://meet.jit.si/{room}")
# "Top buyer": at least this many completed orders, and this much spent, in the last 365 days.
TOP_BUYER_MIN_COMPLETED_ORDERS = env.int("TOP_BUYER_MIN_COMPLETED_ORDERS", default=5)
TOP_BUYER_MIN_SPEND = env.int("TOP_BUYER_MIN_SPEND", default=500)
PRESENCE_TTL_SECONDS = 90

# --- Translation of received messages (inbox.translation): engines tried in this order. Apertium
# runs locally (apt-get install apertium apertium-eng-spa); LibreTranslate is on when its URL is set.
TRANSLATION_BACKENDS = env.list(
    "TRANSLATION_BACKENDS",
    default=["inbox.translation.ApertiumBackend", "inbox.translation.LibreTranslateBackend"],
)
APERTIUM_BINARY = env("APERTIUM_BINARY", default="apertium")
LIBRETRANSLATE_URL = env("LIBRETRANSLATE_URL", default="")
LIBRETRANSLATE_API_KEY = env("LIBRETRANSLATE_API_KEY", default="")
TRANSLATION_TIMEOUT_SECONDS = env.float("TRANSLATION_TIMEOUT_SECONDS", default=15.0)
# Low accuracy: ~20 MB instead of ~210 MB per process, but single words are often misjudged.
TRANSLATION_DETECTION_LOW_ACCURACY = env.bool("TRANSLATION_DETECTION_LOW_ACCURACY", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
