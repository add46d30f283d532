"""A host site set up the way cookiecutter-django sets one up, with byok added.

Token and session authentication, drf-spectacular as DRF's schema class, an API of
its own with a ``status`` and an ``environment`` of its own, its own
``ENUM_NAME_OVERRIDES``, and a schema of all its URLs (``host_urls``): tests run it
in a subprocess to prove byok adds its operations to that schema and nothing else.
``HOST_COMPONENT_SPLIT_REQUEST=1`` turns on drf-spectacular's setting of that name.
"""

import os

from settings import *  # noqa: F403
from settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]
ROOT_URLCONF = "host_urls"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ),
    "DEFAULT_PERMISSION_CLASSES": ("rest_framework.permissions.IsAuthenticated",),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Host API",
    "DESCRIPTION": "Documentation of API endpoints of the host",
    "VERSION": "1.0.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SCHEMA_PATH_PREFIX": "/api/",
    "ENUM_NAME_OVERRIDES": {"OrderStatusEnum": ["open", "shipped"]},
    "COMPONENT_SPLIT_REQUEST": os.environ.get("HOST_COMPONENT_SPLIT_REQUEST") == "1",
}
