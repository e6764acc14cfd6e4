"""ReplayWeb settings: one file, everything overridable from the environment.

Defaults are safe for a laptop on localhost; production sets SECRET_KEY, DEBUG=0,
ALLOWED_HOSTS and DATABASE_URL (see README).
"""
import datetime as dt
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REPLAYWEB_VAR_DIR", BASE_DIR / "var"))


def envbool(name, default):
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def envint(name, default):
    return int(os.environ.get(name, default))


def envlist(name, default):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", True)
# The fallback key only ever signs localhost sessions; `check --deploy` flags it, and production
# (DEBUG=0) refuses to start on it: the key is public, so anyone could sign a session or a token.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DEBUG=0 needs SECRET_KEY in the environment (see README, Production)")
    SECRET_KEY = "django-insecure-replayweb-localhost-only"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_htmx",
    "ninja",  # serves Swagger UI for /api/docs from our own static files (the CSP blocks CDNs)
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "viewer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # /static/ with DEBUG=0, before anything else runs
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Login and the body limits come before CSRF: CsrfViewMiddleware reads a form body to find its
    # token, so an anonymous or oversized upload would be spooled to disk before being turned away.
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "viewer.middleware.LinkOrLoginRequiredMiddleware",  # LoginRequiredMiddleware, and public links
    "viewer.middleware.RequestBodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "viewer.middleware.SecurityHeadersMiddleware",
    "viewer.middleware.InertBidiMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into its answer
]

ROOT_URLCONF = "replayweb.urls"
WSGI_APPLICATION = "replayweb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    # Health checks: after a database restart a kept connection is found dead and replaced
    # before the request uses it, instead of answering one 500 per worker.
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'replayweb.sqlite3'}", conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A fresh clone has no var/ (it is not tracked): SQLite cannot create a file in a missing folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers work while an import writes; the timeout rides out short write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes (maintained by Jazzband, the usual Django login throttle): after AXES_FAILURE_LIMIT
# wrong passwords from one address, logins from it are refused (429) for the cool-off time.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("REPLAYWEB_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = dt.timedelta(minutes=envint("REPLAYWEB_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"


def _client_ip(request):
    """Behind our proxy every request comes from the proxy: the client is the address it appended last."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    return forwarded or request.META.get("REMOTE_ADDR")


if envbool("REPLAYWEB_BEHIND_PROXY", False):
    AXES_CLIENT_IP_CALLABLE = _client_ip
# Attempts are counted in a cache, not in the database: a login must not wait for SQLite's write
# lock while an import holds it. A file cache is shared by the workers of one host; its counts are
# not atomic (two simultaneous failures may count once), slack we accept for a throttle, hence the
# silenced axes.W001. Development and tests count in memory, per process.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CACHE = "axes"
_LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
_FILES = "django.core.cache.backends.filebased.FileBasedCache"
CACHES = {
    "default": {"BACKEND": _LOCMEM},
    "axes": {"BACKEND": _LOCMEM, "LOCATION": "axes"}
    if DEBUG
    else {"BACKEND": _FILES, "LOCATION": VAR_DIR / "cache" / "axes"},
}
SILENCED_SYSTEM_CHECKS = ["axes.W001"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves /static/ from the app with DEBUG=0 (it is the usual maintained library for
# this; no web server configuration needed). Files are found in place (STATICFILES_DIRS and the
# apps), so `collectstatic` is optional; with it, they are served from STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at startup when it is missing

# Uploads bigger than this spill to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = os.environ.get("REPLAYWEB_UPLOAD_TMP") or None
# The app refuses more than REPLAYWEB_MAX_FILES_PER_UPLOAD with a result line; Django's own
# limit is only a backstop (it answers with a bare 400 before any view runs).
REPLAYWEB_MAX_FILES_PER_UPLOAD = envint("REPLAYWEB_MAX_FILES_PER_UPLOAD", 50)
DATA_UPLOAD_MAX_NUMBER_FILES = max(1000, REPLAYWEB_MAX_FILES_PER_UPLOAD)

# Import limits (bytes). Each refusal names the file, the limit and the setting to raise it.
# A file stops being written at REPLAYWEB_MAX_UPLOAD_BYTES while it streams in (the first upload
# handler); a request whose Content-Length is over REPLAYWEB_MAX_REQUEST_BYTES is refused before
# any of it is read (viewer.middleware), as is a file upload from a client that is not logged in.
REPLAYWEB_MAX_UPLOAD_BYTES = envint("REPLAYWEB_MAX_UPLOAD_BYTES", 1024**3)
REPLAYWEB_MAX_REQUEST_BYTES = envint("REPLAYWEB_MAX_REQUEST_BYTES", 2 * 1024**3)
FILE_UPLOAD_HANDLERS = [
    "viewer.middleware.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
REPLAYWEB_MAX_DECOMPRESSED_BYTES = envint("REPLAYWEB_MAX_DECOMPRESSED_BYTES", 1024**3)
REPLAYWEB_MAX_LINE_BYTES = envint("REPLAYWEB_MAX_LINE_BYTES", 16 * 1024**2)
REPLAYWEB_INSERT_BATCH = envint("REPLAYWEB_INSERT_BATCH", 5000)
# How long a write a user asked for (a new API token) waits for an import's SQLite write lock.
REPLAYWEB_WRITE_WAIT_SECONDS = envint("REPLAYWEB_WRITE_WAIT_SECONDS", 120)

# Sessions are files under var/sessions: logout deletes the file, so a copied cookie dies with
# it (a signed cookie stayed valid for its whole age), and "log out everywhere" deletes each of
# the user's files. Not database sessions: a login would then write to SQLite and wait behind a
# long import's write lock; files are shared by the workers of one host and lock nothing.
SESSION_ENGINE = "replayweb.sessions"
SESSION_FILE_PATH = Path(os.environ.get("REPLAYWEB_SESSION_DIR", VAR_DIR / "sessions"))
SESSION_FILE_PATH.mkdir(parents=True, exist_ok=True)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = envbool("REPLAYWEB_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Like HSTS and secure cookies, on by default when DEBUG=0: production is served over TLS only.
SECURE_SSL_REDIRECT = envbool("REPLAYWEB_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = envint("REPLAYWEB_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if envbool("REPLAYWEB_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Background jobs (viewer/jobs.py) through the Django tasks API: the django-tasks backport, as
# Django 5.2 LTS has no django.tasks (Django 6 does; the task code is the same). Embedded default:
# the database backend (django-tasks-db; `manage.py worker` runs its db_worker). Teams set
# REPLAYWEB_REDIS_URL: the RQ backend (django-tasks-rq), whose workers may run on other machines
# against the same database, Redis and file storage. REPLAYWEB_TASKS=immediate runs a job inside
# the call that enqueues it (the test suite's default; never the web process in production).
REPLAYWEB_REDIS_URL = os.environ.get("REPLAYWEB_REDIS_URL", "")
REPLAYWEB_TASKS = os.environ.get("REPLAYWEB_TASKS", "redis" if REPLAYWEB_REDIS_URL else "database")
TASK_QUEUES = ["default", "replay"]  # imports; replay-index builds (small, never behind a 1M import)
if REPLAYWEB_TASKS == "redis":
    if not REPLAYWEB_REDIS_URL:
        raise ImproperlyConfigured("REPLAYWEB_TASKS=redis needs REPLAYWEB_REDIS_URL (redis://host:6379/0)")
    INSTALLED_APPS.insert(INSTALLED_APPS.index("viewer"), "django_rq")
    # A job's own timeout: a 1M-decision import with its aggregates takes a minute or two here.
    RQ_QUEUES = {q: {"URL": REPLAYWEB_REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600} for q in TASK_QUEUES}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": TASK_QUEUES}}
elif REPLAYWEB_TASKS == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": TASK_QUEUES}}
elif REPLAYWEB_TASKS == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": TASK_QUEUES}}
else:
    raise ImproperlyConfigured(f"REPLAYWEB_TASKS={REPLAYWEB_TASKS!r}: use database, redis or immediate")
# Uploaded files wait here for a worker. Workers on other machines need the same files: mount one
# shared folder here (NFS), or point STORAGES["default"] at object storage (django-storages).
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": Path(os.environ.get("REPLAYWEB_JOB_FILES", VAR_DIR / "job-files"))},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A running job whose worker has not been heard from for this long is failed and its half run
# removed (a killed worker); workers report at least every few seconds while they import.
REPLAYWEB_JOB_STALE_SECONDS = envint("REPLAYWEB_JOB_STALE_SECONDS", 120)
# Decisions stored per transaction by an import: between slices, readers and other writers (even
# on SQLite) get their turn, and the job's progress is written.
REPLAYWEB_IMPORT_SLICE = envint("REPLAYWEB_IMPORT_SLICE", 50_000)
# A file this big or bigger is read in a second process while the importing one writes (viewer/pipeline.py,
# issue 19: both cores); 0 reads every file in the importing process.
REPLAYWEB_IMPORT_PIPELINE_BYTES = envint("REPLAYWEB_IMPORT_PIPELINE_BYTES", 1024**2)
# Replay indexes a user may have queued or building at once (viewer/replay_store.py); a further one
# waits for a slot, shown as waiting on its page, whose poll queues it.
REPLAYWEB_REPLAY_BUILDS_PER_USER = envint("REPLAYWEB_REPLAY_BUILDS_PER_USER", 2)
# Decisions (both runs, after the filters) one diff request may align: it holds both sides as compact
# columns, about 110 bytes a decision (two 1M DynoAI runs: peak RSS 294 MB in all, docs/BENCH.md), so
# 2,000,000 is about 210 MB over the process's own. A bigger diff is refused with a 413 saying how to narrow it.
REPLAYWEB_DIFF_MAX_DECISIONS = envint("REPLAYWEB_DIFF_MAX_DECISIONS", 2_000_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("REPLAYWEB_LOG_LEVEL", "WARNING")},
}
