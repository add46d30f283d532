"""Adding a key through the dialog, with JavaScript."""

import pytest

from byok import get_user_api_key
from byok.models import UserAPIKey

pytestmark = pytest.mark.django_db(transaction=True)


def open_dialog(page, service="openai"):
    page.locator(f"#byok-service-{service} [data-byok-open]").click()
    return page.locator(f"#byok-dialog-{service}")


def test_add_key_through_the_dialog(
    page, expect, signed_in, dashboard, openai_answers, openai_secret
):
    openai_answers(200)
    page.goto(dashboard)
    dialog = open_dialog(page)
    expect(dialog).to_be_visible()
    dialog.get_by_label("API key").fill(openai_secret)
    dialog.get_by_label("Nickname").fill("Work")
    dialog.get_by_role("button", name="Add & test key").click()

    # The page reloads and says so in a toast.
    expect(page.locator(".byok-toast-success")).to_contain_text("Your OpenAI key was saved.")
    card = page.locator("#byok-service-openai")
    expect(card.locator(".byok-badge-connected")).to_have_text("Connected")
    row = card.locator("[data-byok-key]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-byok-value]")).to_have_text("sk-proj-…abcd")
    expect(row.locator("[data-byok-status]")).to_have_text("Valid")
    expect(row.locator(".byok-key-name")).to_have_text("Work")
    expect(page.locator("[data-byok-stat=connected]")).to_have_text("1 / 12")
    # The plaintext is nowhere: not in the markup, not left in an input.
    assert openai_secret not in page.content()
    values = page.locator("input").evaluate_all("inputs => inputs.map(input => input.value)")
    assert openai_secret not in values
    assert get_user_api_key(signed_in, "openai") == openai_secret


def test_wrong_format_shows_the_error_and_stores_nothing(
    page, expect, signed_in, dashboard, provider
):
    page.goto(dashboard)
    dialog = open_dialog(page)
    field = dialog.get_by_label("API key")
    field.fill("sk-too-short")
    dialog.get_by_role("button", name="Add & test key").click()

    errors = dialog.locator("#byok-openai-api_key_errors")
    expect(errors.locator("li")).to_have_count(1)
    expect(errors).to_contain_text("sk- followed by 40 to 250")
    expect(dialog.locator("[data-byok-field=api_key]")).to_have_class(
        "byok-field byok-field-invalid"
    )
    expect(page.locator(".byok-toast-error")).to_have_text("The key was not saved.")
    expect(dialog).to_be_visible()
    expect(field).to_be_focused()
    expect(field).to_have_attribute(
        "aria-describedby", "byok-openai-api_key_help byok-openai-api_key_errors"
    )
    assert not UserAPIKey.objects.filter(user=signed_in).exists()
    assert len(provider.calls) == 0  # never sent to OpenAI either


def test_keyboard_focus_moves_into_the_dialog_and_back(page, expect, signed_in, dashboard):
    page.goto(dashboard)
    opener = page.locator("#byok-service-openai [data-byok-open]")
    opener.focus()
    page.keyboard.press("Enter")

    dialog = page.locator("#byok-dialog-openai")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("API key")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()


@pytest.mark.parametrize("submit", ["double click", "two submits in a row"])
def test_submitting_twice_adds_the_key_once(
    page, expect, signed_in, dashboard, provider, openai_answers, openai_secret, submit
):
    openai_answers(200)
    page.goto(dashboard)
    dialog = open_dialog(page)
    dialog.get_by_label("API key").fill(openai_secret)
    if submit == "double click":
        dialog.get_by_role("button", name="Add & test key").dblclick()
    else:  # past the disabled button: the form's own guard
        dialog.locator("form").evaluate("form => { form.requestSubmit(); form.requestSubmit(); }")

    expect(page.locator(".byok-toast-success")).to_contain_text("Your OpenAI key was saved.")
    expect(page.locator(".byok-toast-error")).to_have_count(0)
    expect(page.locator("#byok-service-openai [data-byok-key]")).to_have_count(1)
    assert UserAPIKey.objects.filter(user=signed_in).count() == 1
    assert len(provider.calls) == 1  # one POST reached the server, one probe


def test_key_saved_with_a_warning_closes_the_dialog(
    page, expect, signed_in, dashboard, openai_answers, openai_secret
):
    openai_answers(503)  # OpenAI is down: the key is stored, status "Provider error"
    page.goto(dashboard)
    dialog = open_dialog(page)
    dialog.get_by_label("API key").fill(openai_secret)
    dialog.get_by_role("button", name="Add & test key").click()

    toast = page.locator(".byok-toast")
    expect(toast).to_contain_text("Your OpenAI key was saved.")
    assert UserAPIKey.objects.filter(user=signed_in).count() == 1
    assert "byok-toast-error" not in toast.get_attribute("class")
    assert not dialog.is_visible()
    assert page.locator("#byok-service-openai [data-byok-key]").count() == 1


def test_error_toast_shows_above_the_open_dialog(page, expect, signed_in, dashboard, provider):
    page.goto(dashboard)
    dialog = open_dialog(page)
    dialog.get_by_label("API key").fill("sk-too-short")
    dialog.get_by_role("button", name="Add & test key").click()
    toast = page.locator(".byok-toast-error")
    expect(toast).to_have_text("The key was not saved.")

    box = toast.bounding_box()
    centre = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    # Not the dialog's backdrop: the toast is on top and can be read and clicked.
    assert toast.evaluate(
        "(toast, [x, y]) => toast.contains(document.elementFromPoint(x, y))", centre
    )
