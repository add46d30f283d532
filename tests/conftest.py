import os
from pathlib import Path

import pytest
import responses as responses_lib
from django.core.cache import cache

from byok import http

from factories import UserFactory
from support import client_for


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch):
    """Probes retry once without the pause between the two tries."""
    monkeypatch.setattr(http, "RETRY_PAUSE", 0)


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Each test starts with no throttle counted (they live in the default cache)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def provider():
    """Providers, mocked: OpenAI accepts every key; any other URL is an error."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get("https://api.openai.com/v1/models", json={"object": "list", "data": []})
        yield mock


@pytest.fixture
def mocked():
    """Providers, mocked with nothing registered: a probe finds every host unreachable."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def api(user):
    """The REST API, signed in as ``user``."""
    return client_for(user)


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.config.get_terminal_writer().line(
            "No tests were collected: for this suite that is a failure, not a pass.", red=True
        )


BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(config, items):
    """Mark the browser tests; with ``BYOK_TEST_SCOPE=core`` leave out the slow kinds
    (``browser``, ``multiprocess``), which CI runs in one environment only (tox.ini)."""
    for item in items:
        if BROWSER_TESTS in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
    if os.environ.get("BYOK_TEST_SCOPE", "full") != "core":
        return
    slow = [item for item in items if {"browser", "multiprocess"} & set(item.keywords)]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]
