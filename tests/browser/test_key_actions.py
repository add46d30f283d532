"""A stored key's actions with JavaScript: show/hide, copy, test again, remove."""

import pytest

from byok.models import AuditAction, AuditEvent, UserAPIKey

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(signed_in, openai_secret):
    return UserAPIKeyFactory(
        user=signed_in, service="openai", credentials=openai_secret, nickname="Work"
    )


def row_of(page, key):
    return page.locator(f'[data-byok-key="{key.pk}"]')


def test_show_and_hide(page, expect, key, dashboard, openai_secret):
    page.goto(dashboard)
    row = row_of(page, key)
    value = row.locator("[data-byok-value]")
    toggle = row.locator("[data-byok-reveal]")
    expect(value).to_have_text("sk-proj-…abcd")
    expect(toggle).to_have_attribute("aria-pressed", "false")

    toggle.click()
    expect(value).to_have_text(openai_secret)
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_have_text("Hide")

    toggle.click()
    expect(value).to_have_text("sk-proj-…abcd")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(toggle).to_have_text("Show")
    assert openai_secret not in page.content()
    assert AuditEvent.objects.filter(key=key, action=AuditAction.REVEALED).count() == 1


def test_copy(page, context, expect, live_server, key, dashboard, openai_secret):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(dashboard)
    row_of(page, key).get_by_role("button", name="Copy").click()

    expect(page.locator(".byok-toast-success")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == openai_secret
    # Copied, not shown.
    expect(row_of(page, key).locator("[data-byok-value]")).to_have_text("sk-proj-…abcd")


def test_test_again(page, expect, key, dashboard, openai_answers):
    openai_answers(401)
    page.goto(dashboard)
    row = row_of(page, key)
    badge = row.locator("[data-byok-status]")
    expect(badge).to_have_text("Untested")

    row.get_by_role("button", name="Test again").click()
    expect(badge).to_have_text("Invalid")
    expect(badge).to_have_class("byok-badge byok-status-invalid")
    expect(page.locator(".byok-toast-warning")).to_contain_text("OpenAI")
    key.refresh_from_db()
    assert key.status == "invalid"


def test_remove_with_the_confirm_dialog(page, expect, key, dashboard):
    page.goto(dashboard)
    row_of(page, key).get_by_role("link", name="Remove").click()
    confirm = page.locator("#byok-confirm")
    expect(confirm).to_be_visible()
    expect(confirm.locator("[data-byok-confirm-label]")).to_have_text(str(key))

    confirm.get_by_role("button", name="Remove").click()
    expect(page.locator(".byok-toast-success")).to_have_text(
        "The key was removed and its secret erased."
    )
    expect(row_of(page, key)).to_have_count(0)
    expect(page.locator("#byok-service-openai [data-byok-open]")).to_have_text("Add key")
    key.refresh_from_db()
    assert key.deleted_at is not None
    assert key.credentials is None
    assert not UserAPIKey.objects.for_user(key.user).exists()


def test_cancel_in_the_confirm_dialog_keeps_the_key(page, expect, key, dashboard):
    page.goto(dashboard)
    remove = row_of(page, key).get_by_role("link", name="Remove")
    remove.click()
    confirm = page.locator("#byok-confirm")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(remove).to_be_focused()
    key.refresh_from_db()
    assert key.deleted_at is None
