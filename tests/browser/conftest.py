"""Browser tests: Playwright driving Chromium against pytest-django's live server.

One browser for the whole of ``tests/browser`` (package scope), a fresh context per
test. Providers' HTTP APIs are mocked in-process with ``responses``, which patches
``requests`` for every thread, so the live server's requests see the mock too.

Without Playwright or a Chromium binary the tests are skipped, unless ``CI`` is
``true``: there a missing browser fails the run. ``BYOK_CHROMIUM`` points at
another binary (default ``/usr/bin/chromium``).
"""

import os
import shutil

import pytest
import responses
from django.conf import settings
from django.test import Client
from django.urls import reverse

from fakes import fake_credentials
from support import CHROMIUM, CHROMIUM_ARGS

#: Milliseconds an action or an assertion may wait: the pages answer in a few.
TIMEOUT = 5_000
OPENAI_PROBE = "https://api.openai.com/v1/models"


def in_ci():
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason):
    """Skip, or fail when ``CI`` is ``true``: CI must not pass without the browser tests."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def playwright():
    """Playwright's sync API, for the browser tests only.

    While Playwright runs, an asyncio loop counts as running in the main thread:
    Django refuses ORM calls (hence ``DJANGO_ALLOW_ASYNC_UNSAFE``, meanwhile only)
    and asgiref's ``async_to_sync`` refuses to run. Package scope, not session,
    ends both with the last browser test, whatever order the other tests run in.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        unavailable(f"Playwright is not installed: {error}")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    manager = sync_playwright().start()
    try:
        yield manager
    finally:
        manager.stop()
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(playwright):
    executable = shutil.which(CHROMIUM)
    if executable is None:
        unavailable(f"No Chromium at {CHROMIUM} (set BYOK_CHROMIUM to another binary)")
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def expect(browser):
    """Playwright's ``expect``, imported once the browser is known to be there."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT)
    return expect


@pytest.fixture
def context_options():
    """Options of the test's browser context; a module overrides this fixture."""
    return {}


@pytest.fixture
def context(browser, live_server, context_options):
    options = {"base_url": live_server.url, "viewport": {"width": 1280, "height": 900}}
    context = browser.new_context(**{**options, **context_options})
    context.set_default_timeout(TIMEOUT)
    yield context
    context.close()


@pytest.fixture
def page(context):
    """A tab; an uncaught JavaScript error in it fails the test."""
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def signed_in(context, live_server, user):
    """``user``, signed in in the browser through a session made by Django's test client."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": live_server.url, "httpOnly": True}]
    )
    return user


@pytest.fixture
def dashboard():
    return reverse("byok:dashboard")


@pytest.fixture
def provider():
    """The providers' APIs: nothing answers unless the test says so."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def openai_answers(provider):
    """``openai_answers(status)``: what OpenAI's ``GET /v1/models`` (the probe) answers."""

    def answer(status):
        if status == 200:
            body = {"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]}
        else:
            body = {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}
        provider.upsert(responses.GET, OPENAI_PROBE, json=body, status=status)

    return answer


@pytest.fixture
def openai_secret():
    """A well-formed fake OpenAI project key ending in ``abcd`` (masked: ``sk-proj-…abcd``)."""
    return fake_credentials("openai")[:-4] + "abcd"
