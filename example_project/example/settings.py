"""Settings for the example site. Development only: never deploy these.

SQLite in ``example_project/var/`` by default; set ``DATABASE_URL`` to use
another database. The encryption key comes from ``BYOK_ENCRYPTION_KEYS`` or,
failing that, a key generated once into ``var/`` for this checkout.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)


def _local_secret(name: str, make) -> str:
    """A value kept in var/ so that it survives restarts of the demo."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _demo_resend_key() -> str:
    """A fake Resend key for the demo's platform key: ``re_DEMOFAKE_`` (saying what it
    is to anyone who finds it in ``var/``) and 24 random characters, Resend's shape, so
    that format checks pass. No account holds it: it only shows the platform-key
    fallback, never reaches a working provider. (Not a setting: the error reports'
    list of settings would show the prefix.)"""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "re_DEMOFAKE_" + "".join(secrets.choice(alphabet) for _ in range(24))


def _new_encryption_key() -> str:
    from byok.crypto import generate_key

    return generate_key()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _local_secret(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "byok",
    "example",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "example.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

BYOK = {
    # A service of this site's own, next to the built-in ones.
    "SERVICES": ["example.services.DeepL"],
    # The dashboard and the settings card use the example site's layout.
    "BASE_TEMPLATE": "example/base.html",
    # A made-up platform key, so the "Which key?" page shows the fallback too.
    "PLATFORM_KEYS": {"resend": _local_secret("platform_resend_key", _demo_resend_key)},
    "ENCRYPTION_KEYS": (
        os.environ["BYOK_ENCRYPTION_KEYS"].split(",")
        if os.environ.get("BYOK_ENCRYPTION_KEYS")
        else [_local_secret("encryption_key", _new_encryption_key)]
    ),
}

# Credentials out of every log line, as docs/logging.md shows: the filter sits on every
# handler (a logger's filter would miss its child loggers' records), runserver's
# own handler included, and on the admins' error mails.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "byok.redaction.RedactSecretsFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "{asctime} {levelname} {name} {message}", "style": "{"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["console", "mail_admins"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}
