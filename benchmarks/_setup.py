"""Shared set-up for the benchmarks: a throwaway database with byok migrated."""

import os
import sys
from pathlib import Path

import django
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URLS = {
    "sqlite": "sqlite://:memory:",
    "postgres": os.environ.get("BYOK_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("BYOK_BENCH_MARIADB", "mysql://root@127.0.0.1:3306/test"),
}


def configure(database: str) -> None:
    """Configure Django for ``database`` and create a fresh test database."""
    import dj_database_url

    sys.path.insert(0, str(ROOT / "tests"))
    db = dj_database_url.parse(DATABASE_URLS[database])
    if database != "sqlite":
        db["TEST"] = {"NAME": f"test_byok_bench_{os.getpid()}"}
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "byok",
        ],
        DATABASES={"default": db},
        USE_TZ=True,
        SECRET_KEY="benchmark-only-secret-key",
        BYOK={"ENCRYPTION_KEYS": ["YmVuY2htYXJrLW9ubHkta2V5LWZvci1ieW9rLWJlbmNoZXM"]},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.test.utils import setup_databases

    setup_databases(verbosity=0, interactive=False)


def teardown() -> None:
    from django.db import connection

    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
