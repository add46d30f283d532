import asyncio
import logging
import os
import re
from pathlib import Path

import pytest
import responses as responses_lib
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.utils.log import AdminEmailHandler
from django.views.debug import SafeExceptionReporterFilter

from byok import http

from factories import UserFactory
from support import ADMINS, client_for


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


@pytest.fixture(autouse=True)
def closed_sdk_clients(monkeypatch):
    """The metered SDK clients a test makes are closed when it ends. One left to the
    garbage collector may be collected in the same cycle as its pooled sockets, which
    then warn (ResourceWarning) in whichever later test the collection happens."""
    try:
        from byok.clients import sdk
    except ImportError:  # no SDK installed
        yield
        return
    made = []
    for cls in (sdk.MeteredHTTPClient, sdk.AsyncMeteredHTTPClient):
        monkeypatch.setattr(cls, "__init__", _recording_init(cls.__init__, made))
    yield
    for client in made:
        if client.is_closed:
            continue
        if isinstance(client, sdk.MeteredHTTPClient):
            client.close()
        else:
            asyncio.run(client.aclose())


def _recording_init(init, made):
    def recording(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    return recording


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
def anywhere():
    """Every URL answers 200 with an empty JSON object, so every probe runs to its end."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses_lib.GET, responses_lib.POST):
            mock.add(method, re.compile(r"https?://.*"), json={})
        mock.add(responses_lib.HEAD, re.compile(r"https?://.*"))
        yield mock


@pytest.fixture
def admin_mails(settings, monkeypatch):
    """The mails to ADMINS, with the HTML report too (Django's default handler)."""
    settings.ADMINS = ADMINS
    settings.DEBUG = False
    logger = logging.getLogger("django")
    handlers = [h for h in logger.handlers if isinstance(h, AdminEmailHandler)]
    added = [] if handlers else [AdminEmailHandler()]  # logging without Django's defaults
    for handler in added:
        logger.addHandler(handler)
    for handler in handlers + added:
        monkeypatch.setattr(handler, "include_html", True)
    yield mail.outbox
    for handler in added:
        logger.removeHandler(handler)


@pytest.fixture(params=[True, False], ids=["protected", "unprotected-control"])
def protected(request, monkeypatch):
    if not request.param:
        monkeypatch.setattr(SafeExceptionReporterFilter, "is_active", lambda self, req: False)
    return request.param


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
    (``browser``, ``multiprocess``), which CI runs in one environment only (tox.ini),
    and on PostgreSQL or MariaDB also the ``database_agnostic`` ones, which the SQLite
    environments run on every Python and Django."""
    for item in items:
        if BROWSER_TESTS in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
    if os.environ.get("BYOK_TEST_SCOPE", "full") != "core":
        return
    left_out = {"browser", "multiprocess"}
    if connection.vendor != "sqlite":
        left_out.add("database_agnostic")
    slow = [item for item in items if left_out & set(item.keywords)]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]
