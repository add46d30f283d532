"""The comparison page (byok:compare): signed-in users only, their own figures only,
every figure also in a table, plain links for the period and the category, and a
fallback for any query parameter it does not know."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from test_comparison import seed

from byok.models import UserAPIKey

from factories import KeyUsageFactory, UserAPIKeyFactory

pytestmark = pytest.mark.django_db

URL = reverse("byok:compare")


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def text(response):
    assert response.status_code == 200
    return response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().get(URL)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_only_get_is_allowed(browser):
    assert browser.post(URL).status_code == 405


def test_without_usage_there_is_nothing_to_compare(browser):
    assert "nothing to compare" in text(browser.get(URL))


def test_the_keys_side_by_side_as_charts_and_a_table(browser, user):
    key = seed(user)
    page = text(browser.get(URL))
    assert 'data-byok-category="ai"' in page
    assert page.count('<svg class="byok-chart byok-hbar-chart"') == 3
    assert f'data-byok-source="{key.pk}"' in page
    assert "main (OpenAI)" in page
    assert "Platform key (OpenAI)" in page
    for figure in ("7.0%", "3.0%", "≤ 250 ms", "≤ 500 ms", "$35.00", "$3.18"):
        assert figure in page
    assert "buckets ending at 50, 100, 250, 500, 1,000, 2,500, 5,000, 10,000 ms" in page


def test_the_tips_and_the_list_price_estimates(browser, user):
    seed(user)
    page = text(browser.get(URL))
    assert 'data-byok-tip="concentration"' in page
    assert 'data-byok-tip="platform"' in page
    assert "List-price estimates" in page
    assert "OpenAI 2026-06-04" in page
    assert "Anthropic 2026-05-01" in page
    assert 'data-byok-repricing="openai/gpt-4o"' in page
    assert "$3.41 less" in page


def test_tabs_link_each_category_with_usage_and_keep_the_period(browser, user):
    seed(user)
    page = text(browser.get(URL, {"period": "30"}))
    assert 'href="?period=30&amp;category=ai" aria-current="page"' in page
    assert 'href="?period=30&amp;category=email"' in page
    assert "category=sms" not in page  # no usage there
    page = text(browser.get(URL, {"period": "30", "category": "email"}))
    assert 'data-byok-category="email"' in page
    assert 'href="?period=7&amp;category=email"' in page
    assert "gpt-4o" not in page


def test_the_period_switch_counts_only_its_days(browser, user):
    key = UserAPIKeyFactory(user=user, nickname="old")
    KeyUsageFactory(key=key, date=timezone.localdate() - timezone.timedelta(days=40), calls=9)
    assert "nothing to compare" in text(browser.get(URL, {"period": "30"}))
    page = text(browser.get(URL, {"period": "90"}))
    assert "old (OpenAI)" in page
    assert 'href="?period=90&amp;category=ai" aria-current="page"' in page


@pytest.mark.parametrize(
    "query",
    [
        {"period": "8"},
        {"period": ""},
        {"period": "x" * 5000},
        {"period": "7\x00"},
        {"category": "weather"},
        {"category": "<script>"},
        {"period": ["7", "30"]},
    ],
)
def test_a_bad_parameter_falls_back_to_the_default(browser, user, query):
    seed(user)
    page = text(browser.get(URL, query))
    assert 'data-byok-category="ai"' in page or 'data-byok-category="email"' in page
    assert "<script>" not in page.split("</head>")[-1].replace("<script src", "")


def test_another_users_usage_never_appears(browser, user, other_user):
    theirs = UserAPIKeyFactory(user=other_user, nickname="not-yours")
    KeyUsageFactory(key=theirs, model="claude-opus-4-1", calls=5, input_tokens=10)
    assert "nothing to compare" in text(browser.get(URL))
    seed(user)
    page = text(browser.get(URL))
    assert "not-yours" not in page
    assert "claude-opus-4-1 (Anthropic):" not in page
    assert str(theirs.pk) not in page


def test_no_secret_on_the_page(browser, user):
    seed(user)
    page = text(browser.get(URL))
    for key in UserAPIKey.objects.filter(user=user):
        for value in key.get_credentials().values():
            assert value not in page
            assert value[-12:] not in page


def test_the_query_count_does_not_grow_with_the_rows(browser, user):
    seed(user)
    with CaptureQueriesContext(connection) as few:
        text(browser.get(URL))
    for n in range(10):
        KeyUsageFactory(key=UserAPIKeyFactory(user=user, service="anthropic"), model=f"m{n}")
    with CaptureQueriesContext(connection) as many:
        assert text(browser.get(URL)).count("(Anthropic)") >= 10
    assert len(few) == len(many)


def test_the_dashboard_and_the_usage_page_link_here(browser):
    assert f'href="{URL}"' in text(browser.get(reverse("byok:dashboard")))
    assert f'href="{URL}"' in text(browser.get(reverse("byok:usage")))
