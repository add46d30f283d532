"""Category tabs, the phone layout and the settings card, with JavaScript."""

import pytest
from django.urls import reverse

from byok.services.registry import registry

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_category_tabs_filter_the_cards(page, expect, live_server, signed_in, dashboard):
    page.goto(dashboard)
    cards = page.locator("[data-byok-card]").filter(visible=True)
    expect(cards).to_have_count(len(registry.all()))

    page.evaluate("window.notReloaded = true")
    payment = page.locator("[data-byok-tab=payment]")
    payment.click()
    expect(cards).to_have_count(1)
    expect(cards).to_have_id("byok-service-stripe")
    expect(payment).to_have_attribute("aria-current", "page")
    expect(page).to_have_url(f"{live_server.url}{dashboard}?category=payment")

    page.locator("[data-byok-tab='']").click()
    expect(cards).to_have_count(len(registry.all()))
    expect(payment).not_to_have_attribute("aria-current", "page")
    expect(page).to_have_url(live_server.url + dashboard)
    assert page.evaluate("window.notReloaded")  # filtered in place, no page load


@pytest.mark.parametrize("context_options", [{"viewport": {"width": 390, "height": 844}}])
def test_phone_shows_one_column(page, signed_in, dashboard):
    UserAPIKeyFactory(user=signed_in, service="openai", nickname="Work")
    page.goto(dashboard)
    columns = page.locator("[data-byok-grid]").evaluate(
        "grid => getComputedStyle(grid).gridTemplateColumns"
    )
    assert len(columns.split()) == 1
    first, second = page.locator("[data-byok-card]").all()[:2]
    top, below = first.bounding_box(), second.bounding_box()
    assert below["x"] == top["x"]
    assert below["width"] == top["width"]
    assert below["y"] >= top["y"] + top["height"]
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_settings_card_leads_to_the_dashboard(page, expect, live_server, signed_in, dashboard):
    UserAPIKeyFactory(user=signed_in, service="openai")
    page.goto(reverse("settings"))
    card = page.locator(".byok-settings-card")
    expect(card.get_by_role("heading")).to_have_text("API Keys (BYOK)")
    expect(card).to_contain_text(f"1 of {len(registry.all())} services connected")

    card.get_by_role("link", name="Manage API Keys").click()
    expect(page).to_have_url(live_server.url + dashboard)
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
