"""The multi-process tests' settings with Celery as the task backend: the
django-tasks-fennel adapter, Redis as broker and result store, under the prefix the
test chooses (nothing is flushed)."""

import os

from server_settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_fennel"]  # noqa: F405
TASKS = {"default": {"BACKEND": "django_tasks_fennel.CeleryBackend"}}
_prefix = os.environ.get("BYOK_TEST_CACHE_PREFIX", "byok-test")
CELERY_BROKER_URL = os.environ.get("BYOK_TEST_REDIS", "redis://127.0.0.1:6379/0")
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{_prefix}:celery:"}
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{_prefix}:results:"}
CELERY_RESULT_EXTENDED = True
