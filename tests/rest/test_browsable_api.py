"""DRF's browsable API, as a signed-in user sees it in a browser.

The host need not add ``django_filters`` to INSTALLED_APPS (the quickstart and the
example project do not): the list's filter form is rendered from byok's templates.
"""

import pytest
from django.conf import settings

import byok

from factories import UserAPIKeyFactory
from fakes import fake_credentials, secret_values
from support import windows

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/"


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    client.raise_request_exception = True
    return client


@pytest.fixture
def keys(user):
    credentials = {service: fake_credentials(service) for service in ("openai", "twilio")}
    stored = [
        UserAPIKeyFactory(user=user, service=service, credentials=value)
        for service, value in credentials.items()
    ]
    return stored, credentials


def no_secret_in(page, credentials):
    for value in credentials.values():
        for secret in secret_values(value):
            if len(secret) > 12:
                assert not windows(secret, 12) & windows(page, 12)


def test_the_suite_runs_without_django_filters_installed():
    assert "django_filters" not in settings.INSTALLED_APPS


@pytest.mark.parametrize("ask", [{"HTTP_ACCEPT": "text/html"}, {"data": {"format": "api"}}])
def test_the_list_renders_with_its_filter_form_and_no_secret(browser, keys, ask):
    rows, credentials = keys
    response = browser.get(BASE, **ask)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Field filters" in page
    assert 'name="environment"' in page
    assert 'name="is_active"' in page
    for row in rows:
        assert str(row.pk) in page
        assert row.masked_key in page
    no_secret_in(page, credentials)


def test_a_filtered_list_renders(browser, keys):
    response = browser.get(BASE, {"format": "api", "service": "twilio"})
    assert response.status_code == 200
    page = response.content.decode()
    assert str(keys[0][1].pk) in page
    assert str(keys[0][0].pk) not in page


@pytest.mark.parametrize("ask", [{"HTTP_ACCEPT": "text/html"}, {"data": {"format": "api"}}])
def test_a_key_renders_with_its_forms_and_no_secret(browser, keys, ask):
    rows, credentials = keys
    for row in rows:
        response = browser.get(f"{BASE}{row.pk}/", **ask)
        assert response.status_code == 200
        page = response.content.decode()
        assert row.masked_key in page
        assert "Field filters" not in page
        no_secret_in(page, credentials)


@pytest.mark.parametrize(
    "endpoint", ["services/", "stats/", "usage/", "usage/by-model/", "test/", "budgets/"]
)
def test_the_other_endpoints_render(browser, keys, endpoint):
    response = browser.get(f"{BASE}{endpoint}", {"format": "api"})
    assert response.status_code in (200, 405)
    assert response["Content-Type"].startswith("text/html")
    no_secret_in(response.content.decode(), keys[1])


def test_a_budget_renders(browser, user):
    budget = byok.set_budget(user, limit="5", service="openai")
    response = browser.get(f"{BASE}budgets/{budget.pk}/", {"format": "api"})
    assert response.status_code == 200
    assert "5.00" in response.content.decode()
