"""Settings for byok's test suite.

``DATABASE_URL`` picks the database (SQLite in memory by default);
``BYOK_TEST_USER_MODEL`` picks the user model (default: an e-mail login user
whose primary key is a UUID, to prove byok works with any AUTH_USER_MODEL).
"""

import importlib.util
import os
import re

import dj_database_url
import django

SECRET_KEY = "byok-tests-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "accounts",
    "byok",
]
# Django's tasks framework: built in from Django 6.0, the backport before (whose app
# resets its backends when a test overrides TASKS). The database backend's tables are
# there whenever django-tasks-db is installed, for the multi-process tests' workers.
if django.VERSION < (6, 0):
    INSTALLED_APPS.append("django_tasks")
if importlib.util.find_spec("django_tasks_db") and django.VERSION >= (5, 2):
    INSTALLED_APPS.append("django_tasks_db")

AUTH_USER_MODEL = os.environ.get("BYOK_TEST_USER_MODEL", "accounts.EmailUser")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite://:memory:"))}
_engine = DATABASES["default"]["ENGINE"]
# Parallel tox environments share one server: give each its own test database.
_suffix = re.sub(r"\W", "_", os.environ.get("TOX_ENV_NAME", "local"))
if "sqlite" not in _engine:
    DATABASES["default"]["TEST"] = {"NAME": f"test_byok_{_suffix}"}
if "mysql" in _engine:
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
    DATABASES["default"]["TEST"].update({"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"})

STATIC_URL = "/static/"

# Django 6.1+ reads MAILERS (earlier versions ignore it); tests swap in locmem anyway.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

BYOK = {
    # A fixed key for tests only; tests/conftest.py has a second one for rotation.
    "ENCRYPTION_KEYS": ["dGVzdC1rZXktb25lLWZvci1ieW9rLXRlc3RzLW9ubHkhIQ"],
}
