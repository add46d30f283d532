"""byok's look follows a host's CSS custom properties (docs/pages.md, "Theming").

The host's stylesheet comes first in the page, as in a real layout's ``<head>``,
before byok's own (linked inside the ``content`` block): byok's defaults weigh
nothing, so the host's values win whatever the order.
"""

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)

THEME = {
    "--byok-accent": "rgb(13, 110, 253)",
    "--byok-accent-hover": "rgb(10, 88, 202)",
    "--byok-accent-contrast": "rgb(255, 255, 254)",
    "--byok-accent-gradient": "linear-gradient(90deg, rgb(13, 110, 253), rgb(13, 202, 240))",
    "--byok-text": "rgb(33, 37, 41)",
    "--byok-muted": "rgb(108, 117, 125)",
    "--byok-surface": "rgb(248, 249, 250)",
    "--byok-surface-muted": "rgb(233, 236, 239)",
    "--byok-border": "rgb(222, 226, 230)",
    "--byok-radius": "6px",
    "--byok-radius-small": "4px",
    "--byok-font": "Georgia, serif",
    "--byok-success": "rgb(25, 135, 84)",
    "--byok-danger": "rgb(220, 53, 69)",
    "--byok-chart-user": "rgb(111, 66, 193)",
}


def host_stylesheet(selector):
    declarations = "".join(f"{name}: {value}; " for name, value in THEME.items())
    return f"{selector} {{ {declarations}}}"


@pytest.fixture
def host_layout(tmp_path):
    """``host_layout(css)``: byok's pages inside a host layout whose head holds ``css``."""

    def configure(css):
        (tmp_path / "host_base.html").write_text(
            "<!doctype html><html><head><title>{% block title %}{% endblock %}</title>"
            f"<style>{css}</style></head>"
            '<body><div class="container">{% block content %}{% endblock %}</div></body></html>'
        )
        return override_settings(
            TEMPLATES=[{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}],
            BYOK={**settings.BYOK, "BASE_TEMPLATE": "host_base.html"},
        )

    return configure


def style(page, selector, *properties):
    return page.locator(selector).first.evaluate(
        "(element, names) => names.map(name => getComputedStyle(element)[name])",
        list(properties),
    )


def looks(page):
    """What the theme decides on the dashboard, element by element."""
    return {
        "root": style(page, ".byok", "color", "fontFamily"),
        "primary": style(page, ".byok-button-primary", "backgroundColor", "color"),
        "link": style(page, ".byok-link", "color"),
        "card": style(
            page, ".byok-card", "backgroundColor", "borderTopColor", "borderTopLeftRadius"
        ),
        "button": style(page, ".byok-button:not(.byok-button-primary)", "borderTopLeftRadius"),
        "key": style(page, ".byok-key", "backgroundColor"),
        "label": style(page, ".byok-stat-label", "color"),
        "tab": style(page, ".byok-tabs a[aria-current=page]", "color", "borderBottomColor"),
        "connected": style(page, ".byok-badge-connected", "color"),
        "remove": style(page, "a.byok-button-danger", "color"),
        "masked": style(page, ".byok-key-value", "color"),
    }


THEMED = {
    "root": [THEME["--byok-text"], THEME["--byok-font"]],
    "primary": [THEME["--byok-accent"], THEME["--byok-accent-contrast"]],
    "link": [THEME["--byok-accent"]],
    "card": [THEME["--byok-surface"], THEME["--byok-border"], THEME["--byok-radius"]],
    "button": [THEME["--byok-radius-small"]],
    "key": [THEME["--byok-surface-muted"]],
    "label": [THEME["--byok-muted"]],
    "tab": [THEME["--byok-accent"], THEME["--byok-accent"]],
    "connected": [THEME["--byok-success"]],
    "remove": [THEME["--byok-danger"]],
    "masked": [THEME["--byok-text"]],
}


@pytest.fixture
def dashboard_with_a_key(signed_in, dashboard):
    UserAPIKeyFactory(user=signed_in, service="openai", nickname="Work")
    return dashboard


def test_the_default_look_is_byoks_own(page, host_layout, dashboard_with_a_key):
    with host_layout(""):
        page.goto(dashboard_with_a_key)
        default = looks(page)
    assert default["primary"] == ["rgb(91, 33, 182)", "rgb(255, 255, 255)"]
    for part, values in THEMED.items():
        assert default[part] != values, part


@pytest.mark.parametrize("selector", [":root", ".container"], ids=["root", "wrapper"])
def test_a_host_stylesheet_sets_the_look(page, host_layout, dashboard_with_a_key, selector):
    with host_layout(host_stylesheet(selector)):
        page.goto(dashboard_with_a_key)
        assert looks(page) == THEMED


def test_the_primary_button_hover_follows_the_theme(page, host_layout, signed_in):
    with host_layout(host_stylesheet(":root")):
        page.goto(reverse("byok:import"))
        button = page.get_by_role("button", name="Import")
        button.hover()
        color = button.evaluate("element => getComputedStyle(element).backgroundColor")
        assert color == THEME["--byok-accent-hover"]


def test_the_usage_chart_follows_the_theme(page, host_layout, signed_in):
    from byok import track_api_usage

    UserAPIKeyFactory(user=signed_in, service="openai")
    track_api_usage(signed_in, "openai", calls=3)
    with host_layout(host_stylesheet(":root")):
        page.goto(reverse("byok:usage"))
        assert style(page, "rect.byok-bar-user", "fill") == [THEME["--byok-chart-user"]]


def test_the_settings_card_follows_the_theme(page, signed_in):
    page.goto(reverse("settings"))
    card = ".byok-settings-card"
    before = style(page, card, "backgroundImage", "color")
    assert "rgb(109, 40, 217)" in before[0]  # byok's purple-to-pink gradient
    page.add_style_tag(content=host_stylesheet(":root"))
    assert style(page, card, "backgroundImage", "color", "fontFamily", "borderTopLeftRadius") == [
        THEME["--byok-accent-gradient"],
        THEME["--byok-accent-contrast"],
        THEME["--byok-font"],
        "10px",  # --byok-radius + 4px
    ]
    assert style(page, ".byok-settings-button", "color", "backgroundColor") == [
        THEME["--byok-accent"],
        THEME["--byok-accent-contrast"],
    ]
