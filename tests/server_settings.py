"""Settings for the servers and workers the multi-process tests start.

The suite's own settings, with what several processes must share: Django's
RedisCache on the machine's Redis (under a prefix each test chooses), the database
task backend (django-tasks-db), e-mail written to files, and the ``BYOK`` values a
test passes in the environment as JSON.
"""

import json
import os

from settings import *  # noqa: F403

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("BYOK_TEST_REDIS", "redis://127.0.0.1:6379/0"),
        "KEY_PREFIX": os.environ.get("BYOK_TEST_CACHE_PREFIX", "byok-test"),
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ.get("BYOK_TEST_MAIL_DIR", "/tmp/byok-test-mail")  # noqa: S108
BYOK = {**BYOK, **json.loads(os.environ.get("BYOK_TEST_BYOK", "{}"))}  # noqa: F405
