"""The settings docs/quickstart.md gives hosts, run the way hosts run them.

Without ``BYOK_ENCRYPTION_KEYS`` nothing crashes at import: production stops at check
byok.E001, development gets warning byok.W001, and the test settings give each test
run a fresh key that works, so neither a host's tests nor its CI need one.
"""

import json
import re
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

from byok import checks
from byok.conf import conf
from byok.crypto import get_keyring

from support import run_in_test_project

# The same on every database: run by the SQLite environments and the full one.
pytestmark = pytest.mark.database_agnostic

QUICKSTART = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"


def documented(first_line, containing=""):
    """The quickstart's Python block that starts with ``first_line``."""
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", QUICKSTART.read_text(), re.M | re.S)
    found = [
        textwrap.dedent(code)
        for _, code in blocks
        if textwrap.dedent(code).startswith(first_line) and containing in code
    ]
    assert len(found) == 1, found
    return found[0]


SETTINGS = documented("# settings.py", containing="BYOK = {")
TEST_SETTINGS = documented("# test settings")
COOKIECUTTER_BASE = documented("# byok\n")
COOKIECUTTER_TEST = documented("import secrets", containing="from .base import BYOK")


def byok_messages(**settings):
    with override_settings(**settings):
        return [
            message.id
            for message in checks.check_encryption_keys()
            + checks.check_encryption_keys_for_deploy()
        ]


@pytest.fixture
def unset(monkeypatch):
    monkeypatch.delenv("BYOK_ENCRYPTION_KEYS", raising=False)


def run(code):
    namespace = {}
    exec(code, namespace)  # noqa: S102 - our own documentation
    return namespace


def test_the_settings_import_without_the_variable_and_stop_production(unset):
    byok = run(SETTINGS)["BYOK"]
    assert byok_messages(BYOK=byok, DEBUG=False) == ["byok.E001"]
    with override_settings(BYOK=byok, DEBUG=True):
        assert [m.id for m in checks.check_encryption_keys()] == ["byok.W001"]
        assert [m.id for m in checks.check_encryption_keys_for_deploy()] == ["byok.E001"]


def test_the_settings_read_every_key_of_the_variable(monkeypatch):
    monkeypatch.setenv("BYOK_ENCRYPTION_KEYS", "new-key,old-key")
    with override_settings(BYOK=run(SETTINGS)["BYOK"]):
        assert conf.ENCRYPTION_KEYS == ["new-key", "old-key"]


def test_the_test_settings_give_each_run_a_working_key(unset):
    first, second = (run(SETTINGS + TEST_SETTINGS)["BYOK"] for _ in range(2))
    assert first["ENCRYPTION_KEYS"] != second["ENCRYPTION_KEYS"]
    assert byok_messages(BYOK=first, DEBUG=False) == []
    with override_settings(BYOK=first):
        keyring = get_keyring()
        assert keyring.decrypt(keyring.encrypt(b"a secret", b"a row"), b"a row") == b"a secret"


# What the cookiecutter section's two files do in a fresh process: the test project's
# settings stand in for the rest of cookiecutter-django's base.py, and ``env`` for its
# django-environ ``Env()``.
BASE = """from settings import *  # noqa: F403
import os


def env(name, default):
    return os.environ.get(name, default)


"""
TEST = "from .base import *  # noqa: F403\n"

CHECKS = """
import json

import django

django.setup()

from django.core.checks import run_checks

from byok.crypto import get_keyring

ids = sorted(m.id for m in run_checks(include_deployment_checks=True) if m.id.startswith("byok."))
if not ids:
    ring = get_keyring()
    assert ring.decrypt(ring.encrypt(b"a secret", b"a row"), b"a row") == b"a secret"
print(json.dumps(ids))
"""


@pytest.fixture
def cookiecutter_site(tmp_path):
    settings = tmp_path / "config" / "settings"
    settings.mkdir(parents=True)
    (tmp_path / "config" / "__init__.py").write_text("")
    (settings / "__init__.py").write_text("")
    (settings / "base.py").write_text(BASE + COOKIECUTTER_BASE)
    (settings / "test.py").write_text(TEST + COOKIECUTTER_TEST)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "found"),
    [
        ("config.settings.base", ["byok.E001", "byok.W004"]),
        ("config.settings.test", ["byok.W004"]),
    ],
)
def test_the_cookiecutter_settings_without_the_variable(cookiecutter_site, unset, module, found):
    """Production-like base settings stop at byok.E001; the test settings need no key.
    Both count the budgets in LocMemCache (cookiecutter's production settings use
    Redis): byok.W004, under --deploy."""
    result = run_in_test_project(CHECKS, settings=module, pythonpath=[cookiecutter_site])
    assert json.loads(result.stdout) == found
