"""Every action as a plain form, with JavaScript off: pages, redirects, Django messages."""

import pytest

from byok import get_user_api_key
from byok.models import UserAPIKey
from byok.services.registry import registry

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def context_options():
    return {"java_script_enabled": False}


def test_add_on_the_add_page(
    page, expect, live_server, signed_in, dashboard, openai_answers, openai_secret
):
    openai_answers(200)
    page.goto(dashboard)
    page.locator("#byok-service-openai").get_by_role("link", name="Add key").click()
    expect(page).to_have_url(f"{live_server.url}{dashboard}add/openai/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add your OpenAI key")

    page.get_by_label("API key").fill(openai_secret)
    page.get_by_role("button", name="Add & test key").click()
    expect(page.locator(".byok-toast-success")).to_contain_text("Your OpenAI key was saved.")
    row = page.locator("#byok-service-openai [data-byok-key]")
    expect(row.locator("[data-byok-value]")).to_have_text("sk-proj-…abcd")
    # Show and Copy need JavaScript: hidden without it.
    expect(row.locator("[data-byok-reveal]")).to_be_hidden()
    expect(row.locator("[data-byok-copy]")).to_be_hidden()
    assert openai_secret not in page.content()
    assert get_user_api_key(signed_in, "openai") == openai_secret


def test_wrong_format_on_the_add_page(page, expect, signed_in, dashboard, provider):
    page.goto(f"{dashboard}add/openai/")
    page.get_by_label("API key").fill("sk-too-short")
    page.get_by_role("button", name="Add & test key").click()
    expect(page.locator("#byok-openai-api_key_errors")).to_contain_text("sk- followed by")
    assert not UserAPIKey.objects.filter(user=signed_in).exists()


def test_test_again_with_the_form(page, expect, signed_in, dashboard, openai_answers):
    key = UserAPIKeyFactory(user=signed_in, service="openai")
    openai_answers(401)
    page.goto(dashboard)
    row = page.locator(f'[data-byok-key="{key.pk}"]')
    row.get_by_role("button", name="Test again").click()
    expect(page.locator(".byok-toast-warning")).to_contain_text("OpenAI")
    expect(row.locator("[data-byok-status]")).to_have_text("Invalid")


def test_remove_on_the_confirmation_page(page, expect, signed_in, dashboard):
    key = UserAPIKeyFactory(user=signed_in, service="openai")
    page.goto(dashboard)
    page.locator(f'[data-byok-key="{key.pk}"]').get_by_role("link", name="Remove").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove this key?")
    expect(page.locator(".byok")).to_contain_text(str(key))

    page.get_by_role("button", name="Remove").click()
    expect(page.locator(".byok-toast-success")).to_have_text(
        "The key was removed and its secret erased."
    )
    expect(page.locator("[data-byok-key]")).to_have_count(0)
    key.refresh_from_db()
    assert key.deleted_at is not None


def test_category_links(page, expect, live_server, signed_in, dashboard):
    page.goto(dashboard)
    cards = page.locator("[data-byok-card]").filter(visible=True)
    page.get_by_role("link", name="Payment", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}{dashboard}?category=payment")
    expect(cards).to_have_count(1)
    expect(cards).to_have_id("byok-service-stripe")

    page.get_by_role("link", name="All", exact=True).click()
    expect(cards).to_have_count(len(registry.all()))
