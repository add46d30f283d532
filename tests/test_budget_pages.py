"""Budgets on the pages: the bars on the dashboard's cards, the Budgets page (adding,
changing, removing one's own; the site's read-only), cost by model on the usage page
and the allowance on the settings card."""

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.formats import date_format

import byok
from byok.budgets import period_start, resets_at
from byok.models import AuditAction, AuditEvent, Budget

from factories import KeyUsageFactory, PlatformUsageFactory, UserAPIKeyFactory, UserFactory
from fakes import FAKES, fake_credentials

pytestmark = pytest.mark.django_db

BASE = "/dashboard/api-keys/"
BUDGETS = f"{BASE}budgets/"
PLATFORM_KEY = fake_credentials("openai")
ALLOWANCE = {"name": "free", "limit": "5.00", "applies_to": "platform", "action": "block"}
FORM = {
    "service": "openai",
    "applies_to": "own",
    "period": "month",
    "limit": "10",
    "action": "block",
    "alert_at": "50, 90",
}


def site(**values):
    return override_settings(BYOK={**settings.BYOK, **values})


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def allowance():
    """ "Use our key up to $5 a month, then bring your own"."""
    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}, DEFAULT_BUDGETS=[ALLOWANCE]):
        yield


def html(response):
    return response.content.decode()


def card(page, service):
    """The markup of one service's card on the dashboard."""
    match = re.search(
        rf'<article class="byok-card" id="byok-service-{service}".*?</article>', page, re.S
    )
    assert match, service
    return match.group(0)


def bar(markup, number=0):
    """The ``number``-th progress bar's attributes."""
    bars = re.findall(r'<div class="byok-meter" role="progressbar"([^>]*)>', markup)
    return dict(re.findall(r'(aria-[a-z]+)="([^"]*)"', bars[number]))


def month_reset():
    today = timezone.localdate()
    return date_format(resets_at("month", period_start("month", today)), "DATE_FORMAT")


# the dashboard's cards ----------------------------------------------------------------


def test_a_card_shows_the_budgets_that_cover_its_service(browser, user):
    UserAPIKeyFactory(user=user, service="openai")
    byok.set_budget(user, limit="10", service="openai", action="block")
    byok.set_budget(user, limit="40", period="week", applies_to="all")
    byok.track_api_usage(user, "openai", cost="2.50")
    page = html(browser.get(BASE))

    openai = card(page, "openai")
    assert openai.count('role="progressbar"') == 2
    assert bar(openai, 1) == {  # after the budget on every service
        "aria-labelledby": f"openai-byok-budget-{Budget.objects.get(service='openai').pk}-label",
        "aria-valuemin": "0",
        "aria-valuemax": "10.00",
        "aria-valuenow": "2.50",
        "aria-valuetext": "$2.50 of $10.00 (25%)",
    }
    assert "Monthly budget · OpenAI · spend on your own keys" in openai
    assert "Weekly budget · All services · spend on all keys" in openai
    assert f"resets on {month_reset()}" in openai
    assert '<rect class="byok-meter-fill" width="25" height="1"/>' in openai
    assert "Blocked" not in openai
    # The budget on every service is on every card; the OpenAI one on OpenAI's only.
    resend = card(page, "resend")
    assert resend.count('role="progressbar"') == 1
    assert bar(resend)["aria-valuenow"] == "2.50"  # the OpenAI call counts there too
    assert page.count('role="progressbar"') == len(FAKES) + 1
    # Every label id is unique on the page.
    ids = re.findall(r'id="([^"]+-label)"', page)
    assert len(ids) == len(set(ids))


def test_a_spent_blocking_budget_is_shown_blocked(browser, user):
    UserAPIKeyFactory(user=user, service="openai")
    byok.set_budget(user, limit="1", service="openai", action="block")
    byok.set_budget(user, limit="1", service="resend", action="alert")
    byok.track_api_usage(user, "openai", cost="1.20")
    UserAPIKeyFactory(user=user, service="resend")
    byok.track_api_usage(user, "resend", cost="1.50")
    page = html(browser.get(BASE))

    openai = card(page, "openai")
    assert "data-byok-blocked" in openai
    assert '<span class="byok-badge byok-badge-blocked">Blocked</span>' in openai
    assert f"calls this budget covers are refused until {month_reset()}" in openai
    assert "$1.20 of $1.00 (120%)" in openai
    assert 'width="100"' in openai  # full, not past the end
    resend = card(page, "resend")
    assert "data-byok-blocked" not in resend  # an alert-only budget lets calls through
    assert "Over the limit" in resend


def test_the_dashboard_reads_every_budget_in_one_query(browser, user, django_assert_num_queries):
    with CaptureQueriesContext(connection) as none:
        browser.get(BASE)
    for service in list(FAKES)[:6]:
        UserAPIKeyFactory(user=user, service=service)
        byok.set_budget(user, limit="10", service=service, action="block")
        byok.track_api_usage(user, service, cost="1")
    byok.set_budget(user, limit="50", applies_to="all")
    byok.set_budget(user, limit="3", period="day", site=True)
    with site(DEFAULT_BUDGETS=[ALLOWANCE]), django_assert_num_queries(len(none)):
        page = html(browser.get(BASE))
    assert page.count('role="progressbar"') == 6 + 3 * len(FAKES)


def test_the_budget_query_is_the_only_new_one(user, django_assert_num_queries):
    from byok.budget_bars import budget_bars

    byok.set_budget(user, limit="10", service="openai")
    with site(DEFAULT_BUDGETS=[ALLOWANCE]), django_assert_num_queries(1):
        bars = budget_bars(user)
    assert [(b.site, b.service, b.limit) for b in bars] == [
        (True, "", Decimal("5.00")),
        (False, "openai", Decimal("10.00")),
    ]


# the Budgets page ---------------------------------------------------------------------


def test_the_budgets_page_needs_a_signed_in_user():
    response = Client().get(BUDGETS)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_dashboard_links_to_the_budgets_page(browser):
    assert f'href="{BUDGETS}">Budgets</a>' in html(browser.get(BASE))


def test_the_budgets_page_lists_the_users_and_the_sites_read_only(browser, user, allowance):
    own = byok.set_budget(user, limit="10", service="openai")
    imposed = byok.set_budget(user, limit="3", period="day", site=True)
    theirs = byok.set_budget(UserFactory(), limit="99", service="stripe")
    page = html(browser.get(BUDGETS))

    assert page.count('role="progressbar"') == 3
    assert page.count("data-byok-site") == 2  # the default allowance and the admin's
    assert page.count("Set by the site: you cannot change or remove it.") == 2
    assert f'href="{BUDGETS}{own.pk}/"' in page
    assert f'action="{BUDGETS}{own.pk}/remove/"' in page
    assert f"{BUDGETS}{imposed.pk}/" not in page
    assert "$99.00" not in page
    assert f"{theirs.pk}/" not in page
    assert "Monthly budget · All services · spend on the platform&#x27;s key" in page
    # The site's first.
    assert page.index("Daily budget") < page.index("Monthly budget · OpenAI")
    for name in ("service", "applies_to", "period", "limit", "action", "alert_at"):
        assert f'<label for="byok-budget-{name}">' in page
        assert f'aria-describedby="byok-budget-{name}' in page


def test_the_budgets_page_reads_budgets_in_one_query(browser, user, django_assert_num_queries):
    with CaptureQueriesContext(connection) as none:
        browser.get(BUDGETS)
    for service in list(FAKES)[:8]:
        byok.set_budget(user, limit="10", service=service, period="week")
    with site(DEFAULT_BUDGETS=[ALLOWANCE]), django_assert_num_queries(len(none)):
        page = html(browser.get(BUDGETS))
    assert page.count('role="progressbar"') == 9


def test_adding_a_budget(browser, user):
    response = browser.post(BUDGETS, FORM)
    assert response.status_code == 302
    assert response["Location"] == BUDGETS
    budget = Budget.objects.get()
    assert (budget.user, budget.service, budget.applies_to, budget.period) == (
        user,
        "openai",
        "own",
        "month",
    )
    assert (budget.limit, budget.action, budget.alert_at, budget.source) == (
        Decimal("10.00"),
        "block",
        "50,90",
        "user",
    )
    assert AuditEvent.objects.filter(action=AuditAction.BUDGET_CHANGED, owner=user).count() == 1
    page = html(browser.get(BUDGETS))
    assert "Your budget was saved." in page
    assert "Monthly budget · OpenAI · spend on your own keys" in page


def test_a_budget_on_every_service(browser, user):
    response = browser.post(BUDGETS, {**FORM, "service": "", "applies_to": "platform"})
    assert response.status_code == 302
    assert Budget.objects.get().service == ""


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("limit", "abc", "A number of US dollars, 0 or more."),
        ("limit", "-1", "A number of US dollars, 0 or more."),
        ("limit", "1e100", "A number of US dollars, 0 or more."),
        ("limit", "NaN", "A number of US dollars, 0 or more."),
        ("limit", "", "This field is required."),
        ("limit", "1\x00", "Null characters are not allowed."),
        ("limit", "9" * 40, "Ensure this value has at most 32 characters (it has 40)."),
        ("alert_at", "0", "Up to 12 whole percentages between 1 and 1000."),
        ("alert_at", "50, x", "Up to 12 whole percentages between 1 and 1000."),
        ("alert_at", "50,2000", "Up to 12 whole percentages between 1 and 1000."),
        ("service", "nope", "Unknown service."),
        ("period", "year", "One of: day, week, month."),
        ("action", "explode", "One of: alert, block."),
        ("applies_to", "team", "Select a valid choice. team is not one of the available choices."),
    ],
)
def test_a_bad_value_is_a_form_error_and_changes_nothing(browser, user, field, value, error):
    existing = byok.set_budget(user, limit="7", service="resend")
    response = browser.post(BUDGETS, {**FORM, field: value})
    assert response.status_code == 400
    errors = re.search(
        rf'<ul class="byok-errors" id="byok-budget-{field}_errors">(.*?)</ul>', html(response)
    )
    assert errors
    assert error in errors.group(1).replace("&#x27;", "'")
    assert list(Budget.objects.values_list("pk", "limit")) == [(existing.pk, Decimal("7.00"))]


def test_changing_a_budget(browser, user):
    budget = byok.set_budget(user, limit="10", service="openai", alert_at=[80])
    form = html(browser.get(f"{BUDGETS}{budget.pk}/"))
    assert 'value="10.00"' in form
    assert 'value="80"' in form
    response = browser.post(f"{BUDGETS}{budget.pk}/", {**FORM, "limit": "12.5"})
    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.limit, budget.action) == (Decimal("12.50"), "block")


def test_changing_what_a_budget_covers_replaces_it(browser, user):
    budget = byok.set_budget(user, limit="10", service="openai")
    response = browser.post(f"{BUDGETS}{budget.pk}/", {**FORM, "service": "resend"})
    assert response.status_code == 302
    assert list(Budget.objects.values_list("service", "limit")) == [("resend", Decimal("10.00"))]


def test_a_bad_change_changes_nothing(browser, user):
    budget = byok.set_budget(user, limit="10", service="openai")
    response = browser.post(f"{BUDGETS}{budget.pk}/", {**FORM, "service": "resend", "limit": "x"})
    assert response.status_code == 400
    assert "A number of US dollars, 0 or more." in html(response)
    assert list(Budget.objects.values_list("pk", "service", "limit")) == [
        (budget.pk, "openai", Decimal("10.00"))
    ]


def test_removing_a_budget(browser, user):
    budget = byok.set_budget(user, limit="10", service="openai")
    assert browser.get(f"{BUDGETS}{budget.pk}/remove/").status_code == 405
    response = browser.post(f"{BUDGETS}{budget.pk}/remove/")
    assert response.status_code == 302
    assert not Budget.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.BUDGET_CHANGED).count() == 2


def test_only_the_users_own_budgets_can_be_changed_or_removed(browser, user, allowance):
    theirs = byok.set_budget(UserFactory(), limit="10", service="openai")
    imposed = byok.set_budget(user, limit="3", site=True)
    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}, DEFAULT_BUDGETS=[ALLOWANCE]):
        byok.track_api_usage(user, "openai", cost="1")  # gives the allowance its row
    default_row = Budget.objects.get(user=user, default_name="free")
    before = list(Budget.objects.order_by("pk").values())
    for budget_id in (theirs.pk, imposed.pk, default_row.pk, 999999, "9" * 30):
        assert browser.get(f"{BUDGETS}{budget_id}/").status_code == 404
        assert browser.post(f"{BUDGETS}{budget_id}/", FORM).status_code == 404
        assert browser.post(f"{BUDGETS}{budget_id}/remove/").status_code == 404
    assert browser.get(f"{BUDGETS}nope/").status_code == 404
    assert list(Budget.objects.order_by("pk").values()) == before


def test_budget_forms_need_a_csrf_token(user):
    budget = byok.set_budget(user, limit="10", service="openai")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    refused = [
        client.post(BUDGETS, FORM),
        client.post(f"{BUDGETS}{budget.pk}/", {**FORM, "limit": "1"}),
        client.post(f"{BUDGETS}{budget.pk}/remove/"),
    ]
    assert [r.status_code for r in refused] == [403] * 3
    assert list(Budget.objects.values_list("limit", flat=True)) == [Decimal("10.00")]


def test_budget_pages_carry_no_inline_script(browser, user):
    budget = byok.set_budget(user, limit="10", service="openai")
    for url in (BUDGETS, f"{BUDGETS}{budget.pk}/"):
        page = html(browser.get(url))
        assert re.findall(r"<script(?![^>]*\bsrc=)", page) == [], url
        assert not re.search(r"\s(on[a-z]+|style)=", page), url


# the usage page -----------------------------------------------------------------------


def test_the_usage_page_breaks_cost_down_by_model(browser, user):
    key = UserAPIKeyFactory(user=user, service="openai")
    KeyUsageFactory(
        key=key, model="gpt-4o", calls=3, input_tokens=900, output_tokens=300, cost="0.012"
    )
    KeyUsageFactory(
        key=key,
        model="gpt-4o",
        calls=1,
        date=timezone.localdate() - timezone.timedelta(days=1),
        cost="0.004",
    )
    PlatformUsageFactory(user=user, service="openai", model="gpt-4o-mini", calls=2, cost="0.001")
    page = html(browser.get(f"{BASE}usage/?days=7"))
    rows = re.findall(r'<tr data-byok-model="([^"]+)">(.*?)</tr>', page)
    assert [name for name, _ in rows] == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert "<td>4</td><td>900</td><td>300</td><td>$0.0160</td>" in rows[0][1]
    assert "Estimate incomplete" not in page


def test_the_usage_page_says_when_the_estimate_is_incomplete(browser, user):
    key = UserAPIKeyFactory(user=user, service="openai")
    KeyUsageFactory(key=key, model="my-finetune", calls=3, unpriced_calls=3, cost="0.006")
    PlatformUsageFactory(user=user, service="openai", model="gpt-4o", calls=1, cost="0.01")
    page = html(browser.get(f"{BASE}usage/"))
    assert "Estimate incomplete: 3 calls on unpriced models" in page
    assert "3 unpriced calls</span>" in page


def test_unpriced_calls_recorded_by_metering_are_counted(browser, user):
    UserAPIKeyFactory(user=user, service="openai")
    byok.track_api_usage(user, "openai", model="no-such-model", input_tokens=10)
    byok.track_api_usage(user, "openai", model="gpt-4o", input_tokens=10)
    page = html(browser.get(f"{BASE}usage/"))
    assert "Estimate incomplete: 1 call on unpriced models" in page


# the settings card --------------------------------------------------------------------


def render_card(user):
    request = RequestFactory().get("/settings/")
    request.user = user
    return Template("{% load byok %}{% byok_settings_section %}").render(
        Context({"request": request})
    )


def test_the_settings_card_shows_what_is_left_of_the_allowance(user, django_assert_num_queries):
    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}, DEFAULT_BUDGETS=[ALLOWANCE]):
        assert f"$5.00 of $5.00 left this month, resets on {month_reset()}" in render_card(user)
        byok.track_api_usage(user, "openai", cost="1.25")
        with django_assert_num_queries(2):
            markup = render_card(user)
    assert f"$3.75 of $5.00 left this month, resets on {month_reset()}" in markup
    assert bar(markup)["aria-valuenow"] == "1.25"


def test_the_settings_card_shows_no_allowance_without_one(user, django_assert_num_queries):
    byok.set_budget(user, limit="10", applies_to="platform")  # the user's own, not an allowance
    markup = render_card(user)
    assert "left this" not in markup
    assert "progressbar" not in render_card(AnonymousUser())
