"""ReplayWeb settings: one file, everything overridable from the environment.

Defaults are safe for a laptop on localhost; production sets SECRET_KEY, DEBUG=0,
ALLOWED_HOSTS and DATABASE_URL (see README).
"""
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REPLAYWEB_VAR_DIR", BASE_DIR / "var"))


def envbool(name, default):
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def envint(name, default):
    return int(os.environ.get(name, default))


def envlist(name, default):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", True)
# The fallback key only ever signs localhost sessions; `check --deploy` flags it.
SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-replayweb-localhost-only")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # serves Swagger UI for /api/docs from our own static files (the CSP blocks CDNs)
    "template_partials",
    "viewer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "viewer.middleware.SecurityHeadersMiddleware",
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
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'replayweb.sqlite3'}", conn_max_age=60
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

# Uploads bigger than this spill to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = os.environ.get("REPLAYWEB_UPLOAD_TMP") or None
# The app refuses more than REPLAYWEB_MAX_FILES_PER_UPLOAD with a result line; Django's own
# limit is only a backstop (it answers with a bare 400 before any view runs).
REPLAYWEB_MAX_FILES_PER_UPLOAD = envint("REPLAYWEB_MAX_FILES_PER_UPLOAD", 50)
DATA_UPLOAD_MAX_NUMBER_FILES = max(1000, REPLAYWEB_MAX_FILES_PER_UPLOAD)

# Import limits (bytes). Each refusal names the file, the limit and the setting to raise it.
REPLAYWEB_MAX_UPLOAD_BYTES = envint("REPLAYWEB_MAX_UPLOAD_BYTES", 1024**3)
REPLAYWEB_MAX_DECOMPRESSED_BYTES = envint("REPLAYWEB_MAX_DECOMPRESSED_BYTES", 1024**3)
REPLAYWEB_MAX_LINE_BYTES = envint("REPLAYWEB_MAX_LINE_BYTES", 16 * 1024**2)
REPLAYWEB_INSERT_BATCH = envint("REPLAYWEB_INSERT_BATCH", 5000)

# Sessions live in a signed cookie, not a table: logging in writes nothing to the database, so
# it works while a long import holds SQLite's single write lock.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("REPLAYWEB_LOG_LEVEL", "WARNING")},
}
