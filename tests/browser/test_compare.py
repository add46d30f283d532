"""The comparison page in Chromium: category tabs and the period switch are links that
keep each other, with JavaScript on and off; the figures read without JavaScript."""

import pytest
from django.urls import reverse
from django.utils import timezone
from test_comparison import seed

from factories import KeyUsageFactory, UserAPIKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)

URL = reverse("byok:compare")


@pytest.fixture(params=[True, False], ids=["javascript", "no-javascript"])
def context_options(request):
    return {"java_script_enabled": request.param}


def test_tabs_and_the_period_switch(page, expect, live_server, signed_in):
    seed(signed_in)
    page.goto(URL)
    categories = page.get_by_role("navigation", name="Category")
    periods = page.get_by_role("navigation", name="Period")
    expect(categories.get_by_role("link", name="AI", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(periods.get_by_role("link", name="This month")).to_have_attribute(
        "aria-current", "page"
    )
    panel = page.locator("[data-byok-category]")
    expect(panel.get_by_role("heading", level=2)).to_have_text("AI")
    expect(panel.locator("[data-byok-tip]")).to_have_count(2)

    categories.get_by_role("link", name="Email", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}{URL}?period=month&category=email")
    expect(panel.get_by_role("heading", level=2)).to_have_text("Email")
    expect(panel.locator("[data-byok-compare-table] tbody tr")).to_have_count(1)

    periods.get_by_role("link", name="7 days", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}{URL}?period=7&category=email")
    expect(periods.get_by_role("link", name="7 days", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(categories.get_by_role("link", name="Email", exact=True)).to_have_attribute(
        "aria-current", "page"
    )


def test_the_figures_read_as_charts_and_a_table(page, expect, signed_in):
    seed(signed_in)
    page.goto(URL)
    charts = page.get_by_role("img")
    expect(charts).to_have_count(3)
    expect(charts.first).to_be_visible()
    table = page.locator("[data-byok-compare-table]")
    row = table.locator("tbody tr").filter(has_text="main (OpenAI)")
    for figure in ("100", "7.0%", "3.0%", "≤ 250 ms", "≤ 500 ms", "$35.00"):
        expect(row).to_contain_text(figure)
    repricing = page.locator('[data-byok-repricing="openai/gpt-4o"]')
    expect(repricing.locator("tbody tr").first).to_contain_text("gpt-5-nano")
    expect(page.locator("[data-byok-list-prices]")).to_contain_text("List-price estimates")


def test_an_older_period_brings_older_usage(page, expect, signed_in):
    key = UserAPIKeyFactory(user=signed_in, nickname="last quarter")
    KeyUsageFactory(key=key, date=timezone.localdate() - timezone.timedelta(days=60), calls=3)
    page.goto(URL)
    expect(page.locator("[data-byok-empty]")).to_be_visible()
    page.get_by_role("navigation", name="Period").get_by_role("link", name="90 days").click()
    expect(page.locator("[data-byok-compare-table]")).to_contain_text("last quarter (OpenAI)")
