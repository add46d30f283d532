import os
from importlib.metadata import version
from pathlib import Path

import pytest

import byok

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGE = Path(byok.__file__).resolve().parent


def test_one_source_for_the_version():
    assert version("django-byok") == byok.__version__


@pytest.mark.skipif(not os.environ.get("BYOK_TEST_WHEEL"), reason="only under tox")
def test_the_suite_runs_against_the_installed_wheel():
    assert "site-packages" in PACKAGE.parts
    assert PACKAGE != CHECKOUT / "byok"


def test_the_package_ships_what_it_needs():
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "migrations" / "0001_initial.py").is_file()
    shipped = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*") if p.is_file()}
    source = {
        p.relative_to(CHECKOUT / "byok").as_posix()
        for p in (CHECKOUT / "byok").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert source <= shipped


def test_the_package_ships_its_translations():
    for language in ("de", "es", "fr"):
        messages = PACKAGE / "locale" / language / "LC_MESSAGES"
        assert (messages / "django.po").is_file()
        assert (messages / "django.mo").stat().st_size > 10_000


def test_importing_byok_is_cheap():
    import subprocess
    import sys

    code = "import sys, byok; print('django.db' in sys.modules, 'byok.models' in sys.modules)"
    env = {**os.environ}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out == ["False", "False"]
