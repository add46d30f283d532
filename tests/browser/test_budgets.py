"""Setting a budget on the Budgets page, then seeing its bar on the dashboard's card."""

import pytest

import byok
from byok.models import Budget

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_budget_set_on_the_page_shows_as_a_bar(page, expect, live_server, signed_in, dashboard):
    UserAPIKeyFactory(user=signed_in, service="openai")
    page.goto(dashboard)
    page.get_by_role("link", name="Budgets", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Budgets")

    page.get_by_label("Service").select_option(label="OpenAI")
    page.get_by_label("Counts spend on").select_option("own")
    page.get_by_label("Limit (USD)").fill("12")
    page.get_by_label("When the limit is reached").select_option("block")
    page.get_by_role("button", name="Save budget").click()
    expect(page.locator(".byok-toast-success")).to_contain_text("Your budget was saved.")
    assert Budget.objects.get(user=signed_in).limit == 12
    byok.track_api_usage(signed_in, "openai", cost="3.00")  # counts from now on

    page.goto(dashboard)
    bar = page.locator("#byok-service-openai").get_by_role(
        "progressbar", name="Monthly budget · OpenAI · spend on your own keys"
    )
    expect(bar).to_have_attribute("aria-valuenow", "3.00")
    expect(bar).to_have_attribute("aria-valuemax", "12.00")
    expect(bar).to_have_attribute("aria-valuetext", "$3.00 of $12.00 (25%)")
    fill = bar.locator(".byok-meter-fill")
    track = bar.bounding_box()
    assert 0.2 < fill.bounding_box()["width"] / track["width"] < 0.3
    expect(page.locator("#byok-service-resend").get_by_role("progressbar")).to_have_count(0)
