"""The pages, server side: plain forms, JSON for byok.js, access, queries, secrets."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from byok.models import UserAPIKey

from factories import KeyUsageFactory, PlatformUsageFactory, UserAPIKeyFactory
from fakes import FAKES, fake_credentials, secret_values

pytestmark = pytest.mark.django_db

BASE = "/dashboard/api-keys/"
MODELS = "https://api.openai.com/v1/models"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def html(response):
    return response.content.decode()


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


# the dashboard --------------------------------------------------------------------


def test_the_dashboard_needs_a_signed_in_user():
    response = Client().get(BASE)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_dashboard_shows_every_service_and_the_users_keys_masked(browser, user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret, nickname="Work")
    page = html(browser.get(BASE))
    assert page.count("data-byok-card ") == len(FAKES)
    assert key.masked_key in page
    assert "Work" in page
    assert secret not in page
    assert "1 / 12" in page


def test_the_dashboard_runs_the_same_queries_for_1_and_12_keys(browser, user):
    services = list(FAKES)
    UserAPIKeyFactory(user=user, service=services[0])
    with CaptureQueriesContext(connection) as one:
        browser.get(BASE)
    for service in services[1:]:
        UserAPIKeyFactory(user=user, service=service)
    with CaptureQueriesContext(connection) as twelve:
        page = html(browser.get(BASE))
    assert page.count("data-byok-key=") == 12
    assert len(one) == len(twelve)


def test_category_links_filter_without_javascript(browser):
    page = html(browser.get(f"{BASE}?category=payment"))
    visible = re.findall(
        r'<article class="byok-card" id="byok-service-(\w+)"[^>]*?(hidden)?>', page
    )
    assert [service for service, hidden in visible if not hidden] == ["stripe"]
    assert 'aria-current="page">Payment' in page
    unknown = html(browser.get(f"{BASE}?category=food"))
    assert " hidden>" not in unknown


def test_the_banner_can_be_dismissed_with_a_plain_form(browser):
    assert "Why bring your own keys?" in html(browser.get(BASE))
    response = browser.post(f"{BASE}banner/dismiss/")
    assert response.status_code == 302
    assert "Why bring your own keys?" not in html(browser.get(BASE))


def test_pages_carry_no_inline_script(browser, user):
    UserAPIKeyFactory(user=user)
    for url in (BASE, f"{BASE}add/openai/", f"{BASE}usage/"):
        page = html(browser.get(url))
        assert re.findall(r"<script(?![^>]*\bsrc=)", page) == [], url
        assert not re.search(r"\son[a-z]+=", page), url


# adding ------------------------------------------------------------------------------


def test_adding_without_javascript_redirects_with_a_message(browser, user, provider):
    secret = fake_credentials("openai")
    page = browser.get(f"{BASE}add/openai/")
    assert page.status_code == 200
    assert 'type="password"' in html(page)
    response = browser.post(
        f"{BASE}add/openai/",
        {
            "api_key": secret,
            "nickname": "Laptop",
            "environment": "production",
            "test": "on",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == BASE
    assert messages_of(response) == ["Your OpenAI key was saved. OpenAI accepted the key."]
    key = UserAPIKey.objects.get()
    assert (key.nickname, key.status, key.get_secret()) == ("Laptop", "valid", secret)


def test_only_a_key_sent_to_the_provider_spends_the_test_budget(browser, provider, settings):
    settings.REST_FRAMEWORK = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "1/minute"},
    }

    def add(secret):
        form = {"api_key": secret, "environment": "production", "test": "on"}
        return browser.post(f"{BASE}add/openai/", form)

    assert add("sk-short").status_code == 400  # a format error: never sent
    assert add("sk-short").status_code == 400
    assert add(fake_credentials("openai")).status_code == 302
    refused = add(fake_credentials("openai"))
    assert refused.status_code == 429
    assert "Too many keys tested in a short time" in html(refused)
    assert UserAPIKey.objects.count() == 1
    assert len(provider.calls) == 1


def test_a_wrong_format_is_shown_inline_and_stores_nothing(browser):
    secret = "sk-" + "x1" * 10
    response = browser.post(f"{BASE}add/openai/", {"api_key": secret, "environment": "production"})
    assert response.status_code == 400
    page = html(response)
    assert "API key must be" in page
    assert secret not in page  # a password input is never filled back in
    assert not UserAPIKey.objects.exists()


def test_javascript_posts_get_json(browser, provider):
    bad = browser.post(f"{BASE}add/openai/", {"api_key": "nope", "environment": "test"}, **JSON)
    assert bad.status_code == 400
    assert bad.json()["errors"]["api_key"][0]["code"] == "format"
    good = browser.post(
        f"{BASE}add/openai/",
        {"api_key": fake_credentials("openai"), "environment": "test", "test": "on"},
        **JSON,
    )
    assert good.status_code == 200
    assert good.json()["ok"] is True
    assert good.json()["key"] == str(UserAPIKey.objects.get().pk)


def test_a_key_the_provider_rejects_is_not_stored(browser, provider):
    provider.replace("GET", MODELS, status=401, json={"error": {"code": "invalid_api_key"}})
    response = browser.post(
        f"{BASE}add/openai/",
        {"api_key": fake_credentials("openai"), "environment": "production", "test": "on"},
        **JSON,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["test"]["status"] == "invalid"
    assert body["errors"]["__all__"][0]["message"] == "OpenAI rejected the key (HTTP 401)."
    assert not UserAPIKey.objects.exists()


def test_submitting_twice_adds_once(browser):
    form = {"api_key": fake_credentials("openai"), "environment": "production"}
    first = browser.post(f"{BASE}add/openai/", form, **JSON)
    second = browser.post(f"{BASE}add/openai/", form, **JSON)
    assert (first.status_code, second.status_code) == (200, 400)
    assert second.json()["errors"]["__all__"][0]["code"] == "duplicate"
    assert UserAPIKey.objects.count() == 1


def test_an_unknown_service_is_404(browser):
    assert browser.get(f"{BASE}add/nope/").status_code == 404


# testing and removing ----------------------------------------------------------------


def test_test_again(browser, user, provider):
    key = UserAPIKeyFactory(user=user)
    response = browser.post(f"{BASE}keys/{key.pk}/test/")
    assert response.status_code == 302
    assert messages_of(response) == ["OpenAI accepted the key."]
    answer = browser.post(f"{BASE}keys/{key.pk}/test/", **JSON).json()
    assert (answer["status"], answer["status_label"]) == ("valid", "Valid")


def test_removing_asks_first_then_erases(browser, user):
    key = UserAPIKeyFactory(user=user)
    confirm = browser.get(f"{BASE}keys/{key.pk}/remove/")
    assert "Remove this key?" in html(confirm)
    response = browser.post(f"{BASE}keys/{key.pk}/remove/")
    assert response.status_code == 302
    row = UserAPIKey.objects.get(pk=key.pk)
    assert (row.credentials, row.deleted_at is not None) == (None, True)


def test_another_users_key_is_404_everywhere(browser):
    theirs = UserAPIKeyFactory()
    for method, path in [("post", "test/"), ("get", "remove/"), ("post", "remove/")]:
        response = getattr(browser, method)(f"{BASE}keys/{theirs.pk}/{path}")
        assert response.status_code == 404, (method, path)
    assert UserAPIKey.objects.get(pk=theirs.pk).deleted_at is None


def test_forms_need_a_csrf_token(user):
    key = UserAPIKeyFactory(user=user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    refused = [
        client.post(f"{BASE}add/openai/", {"api_key": fake_credentials("openai")}),
        client.post(f"{BASE}keys/{key.pk}/remove/"),
        client.post(f"{BASE}keys/{key.pk}/test/"),
        client.post(f"{BASE}banner/dismiss/"),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert UserAPIKey.objects.get(pk=key.pk).deleted_at is None


def test_get_is_not_allowed_where_it_would_change_something(browser, user):
    key = UserAPIKeyFactory(user=user)
    assert browser.get(f"{BASE}keys/{key.pk}/test/").status_code == 405
    assert browser.get(f"{BASE}banner/dismiss/").status_code == 405


# usage -------------------------------------------------------------------------------


def test_the_usage_page_draws_accessible_charts_with_tables(browser, user):
    key = UserAPIKeyFactory(user=user)
    today = timezone.localdate()
    KeyUsageFactory(key=key, date=today, calls=7, cost="0.014")
    PlatformUsageFactory(user=user, service="resend", date=today - timedelta(days=3), calls=2)
    page = html(browser.get(f"{BASE}usage/?days=7"))
    assert page.count('role="img"') == 4
    assert '<title id="byok-calls-openai-title">OpenAI: calls per day</title>' in page
    assert "<desc id=" in page
    assert f"{today.isoformat()}: your keys 7" in page
    assert "<table" in page
    assert 'aria-current="page">7 days' in page


@pytest.mark.parametrize("days", ["90", "x", "5"])
def test_the_usage_page_accepts_only_its_windows(browser, days):
    page = html(browser.get(f"{BASE}usage/?days={days}"))
    current = "90" if days == "90" else "30"
    assert f'aria-current="page">{current} days' in page


# the settings card -------------------------------------------------------------------


def render_card(user):
    request = RequestFactory().get("/settings/")
    request.user = user
    return Template("{% load byok %}{% byok_settings_section %}").render(
        Context({"request": request})
    )


def test_the_settings_card(user):
    UserAPIKeyFactory(user=user, service="openai")
    UserAPIKeyFactory(user=user, service="openai")
    card = render_card(user)
    assert "API Keys (BYOK)" in card
    assert "Your Own Keys" in card
    assert "1 of 12 services connected" in card
    assert f'href="{BASE}"' in card
    assert "byok-settings-card" in card


def test_the_settings_card_for_anyone_else():
    from django.contrib.auth.models import AnonymousUser

    assert "0 of 12 services connected" in render_card(AnonymousUser())


# templates -------------------------------------------------------------------------------


def test_pages_extend_the_configured_base_template(browser, tmp_path):
    (tmp_path / "host_base.html").write_text(
        "<html><title>{% block title %}{% endblock %}</title><body>HOST LAYOUT"
        "{% block content %}{% endblock %}</body></html>"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    byok = {**settings.BYOK, "BASE_TEMPLATE": "host_base.html"}
    with override_settings(TEMPLATES=templates, BYOK=byok):
        for url in (BASE, f"{BASE}add/openai/", f"{BASE}usage/"):
            assert "HOST LAYOUT" in html(browser.get(url))


def test_no_page_holds_a_secret(browser, user, provider):
    stored = {service: fake_credentials(service) for service in FAKES}
    keys = [
        UserAPIKeyFactory(user=user, service=service, credentials=credentials)
        for service, credentials in stored.items()
    ]
    pages = [
        browser.get(BASE),
        browser.get(f"{BASE}?category=ai"),
        browser.get(f"{BASE}usage/"),
        browser.get(f"{BASE}keys/{keys[0].pk}/remove/"),
        browser.get(f"{BASE}add/twilio/"),
        browser.post(f"{BASE}add/openai/", {"api_key": stored["openai"], "environment": "test"}),
    ]
    everything = "".join(html(page) for page in pages) + render_card(user)
    for credentials in stored.values():
        for value in secret_values(credentials):
            if len(value) > 16:
                assert value not in everything
