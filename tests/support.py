"""Helpers shared by the tests."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import django
from django.db import connection

# A second test-only key, for rotation tests (tests/settings.py has the first).
OTHER_ENCRYPTION_KEY = "dGVzdC1rZXktdHdvLWZvci1ieW9rLXRlc3RzLW9ubHkhIQ"

# The browser for the page tests and docs/screenshots.py: Debian's Chromium unless
# BYOK_CHROMIUM names another, headless, with nothing reaching out to the network.
CHROMIUM = os.environ.get("BYOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

# Who gets error mails. Django 6.0 takes plain addresses and deprecates
# (name, address) pairs, which older versions need.
ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]

# The admin key form's usage inline (management form): no usage row edited.
NO_INLINE_ROWS = {
    "daily_usage-TOTAL_FORMS": "0",
    "daily_usage-INITIAL_FORMS": "0",
    "daily_usage-MIN_NUM_FORMS": "0",
    "daily_usage-MAX_NUM_FORMS": "0",
}


def raw_byok_tables():
    """Every row of every byok table, read with plain SQL, as one string."""
    dump = []
    with connection.cursor() as cursor:
        tables = sorted(t for t in connection.introspection.table_names() if t.startswith("byok_"))
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def windows(value, size=8):
    """Every run of ``size`` consecutive characters in ``value``."""
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def with_row_locks():
    """Whether the database has real row locks and isolation (not SQLite)."""
    return connection.vendor in ("postgresql", "mysql")


def with_byok(**values):
    """``override_settings`` of ``BYOK``: the suite's encryption key and ``values``."""
    from django.conf import settings
    from django.test import override_settings

    return override_settings(BYOK={**settings.BYOK, **values})


def aged(key, **fields):
    """``key`` with ``fields`` (dates, usually) written straight to its row."""
    type(key).objects.filter(pk=key.pk).update(**fields)
    key.refresh_from_db()
    return key


def client_for(user):
    """A DRF test client signed in as ``user`` (anonymous for ``None``)."""
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def run_in_test_project(code, *args, settings="settings", pythonpath=(), check=True, **env):
    """Runs ``code`` in a fresh Python process with the test project on the path, as a
    host's ``manage.py`` runs: nothing cached from this process."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": os.pathsep.join(map(str, [Path(__file__).resolve().parent, *pythonpath])),
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@contextmanager
def signal_calls(signal):
    """The keyword arguments of every sending of ``signal`` inside the block."""
    received = []
    uid = object()
    signal.connect(lambda **kwargs: received.append(kwargs), weak=False, dispatch_uid=uid)
    try:
        yield received
    finally:
        signal.disconnect(dispatch_uid=uid)


def frames_from_byok(call):
    """What an error report shows of each frame from byok's entry point inward, when
    ``call`` fails: ``(shown, held)``, the report's text of those frames' variables
    and what the frames really held (to prove the secret was within reach)."""
    import pytest
    from django.test import override_settings
    from django.views.debug import ExceptionReporter

    with pytest.raises(Exception) as excinfo:  # noqa: PT011 - any failure deep inside
        call()
    tb = excinfo.tb
    while tb is not None and "/byok/" not in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    assert tb is not None, "the failure did not happen inside byok"
    with override_settings(DEBUG=False):
        reporter = ExceptionReporter(None, excinfo.type, excinfo.value, tb)
        frames = reporter.get_traceback_frames()
    shown = "\n".join(_safe_repr(dict(frame["vars"])) for frame in frames)
    held = []
    while tb is not None:
        held.append(_safe_repr(tb.tb_frame.f_locals))
        tb = tb.tb_next
    return shown, "\n".join(held)


def _safe_repr(variables):
    """Each value's repr, as Django's report makes it (a half-built object may fail)."""
    texts = []
    for name, value in variables.items():
        try:
            texts.append(f"{name}={value!r}")
        except Exception:
            texts.append(f"{name}=<unprintable>")
    return ", ".join(texts)


def change_form(key, **changes):
    """The admin change form of ``key`` as it stands, with ``changes``."""
    data = {
        "nickname": key.nickname,
        "environment": key.environment,
        "secret": "",
        "is_active": "on",
        **NO_INLINE_ROWS,
    }
    return {**data, **changes}


def admin_url(name, obj):
    """The admin page ``name`` (``change``, ``delete``, ``history``) of ``obj``."""
    model = obj._meta.model_name
    return f"/admin/byok/{model}/{obj.pk}/{name}/"
