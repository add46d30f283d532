"""Django's messages on byok's pages: shown once, by byok or by the host's layout.

A layout that renders ``messages`` (cookiecutter-django's does, above its ``content``
block) has shown them by the time byok's block renders; under the default
``RENDER_MESSAGES = "auto"`` byok then leaves them out, and shows them otherwise.
"""

import pytest
from django.conf import settings
from django.test import override_settings

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db

BASE = "/dashboard/api-keys/"
REMOVED = "The key was removed and its secret erased."

ALERTS = (
    "{% for message in messages %}"
    '<div class="alert alert-dismissible alert-{{ message.tags }}">{{ message }}'
    '<button type="button" class="btn-close" data-bs-dismiss="alert"></button></div>'
    "{% endfor %}"
)
# cookiecutter-django's base.html, in short: the alerts above the content block.
MESSAGES_ABOVE = (
    "<!doctype html><html><head><title>{% block title %}{% endblock %}</title></head>"
    '<body><div class="container">{% if messages %}' + ALERTS + "{% endif %}"
    "{% block main %}{% block content %}{% endblock content %}{% endblock main %}"
    "</div></body></html>"
)
# A layout that shows its alerts at the end of the page, after the content.
MESSAGES_BELOW = (
    "<!doctype html><html><head><title>{% block title %}{% endblock %}</title></head>"
    "<body>{% block content %}{% endblock %}" + ALERTS + "</body></html>"
)


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def host(tmp_path):
    """``host(layout, **byok)``: byok's pages inside a host layout, with these settings."""

    def configure(layout=None, **values):
        templates = settings.TEMPLATES
        byok = {**settings.BYOK, **values}
        if layout is not None:
            (tmp_path / "host_base.html").write_text(layout)
            templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
            byok["BASE_TEMPLATE"] = "host_base.html"
        return override_settings(TEMPLATES=templates, BYOK=byok)

    return configure


def shown(browser, user, page=BASE):
    """Where the message of a removal appears on ``page``: host alerts, byok toasts."""
    key = UserAPIKeyFactory(user=user)
    browser.post(f"{BASE}keys/{key.pk}/remove/")
    body = browser.get(page).content.decode()
    toasts = body.split("data-byok-toasts>", 1)[1].split("</div>", 1)[0]
    return {
        "host": body.count(f'alert-success">{REMOVED}'),
        "byok": toasts.count(REMOVED),
        "total": body.count(REMOVED),
    }


def test_byoks_own_base_template_gets_the_messages_from_byok(browser, user, host):
    with host():
        assert shown(browser, user) == {"host": 0, "byok": 1, "total": 1}


def test_a_layout_without_messages_gets_them_from_byok(browser, user, host):
    layout = "<title>{% block title %}{% endblock %}</title>{% block content %}{% endblock %}"
    with host(layout):
        assert shown(browser, user) == {"host": 0, "byok": 1, "total": 1}


@pytest.mark.parametrize("page", [BASE, f"{BASE}import/"])
def test_a_layout_that_renders_messages_shows_them_once(browser, user, host, page):
    with host(MESSAGES_ABOVE):
        assert shown(browser, user, page) == {"host": 1, "byok": 0, "total": 1}


def test_the_messages_are_consumed_once_shown(browser, user, host):
    with host(MESSAGES_ABOVE):
        shown(browser, user)
        assert REMOVED not in browser.get(BASE).content.decode()


def test_render_messages_false_leaves_them_to_the_host_wherever_it_puts_them(browser, user, host):
    with host(MESSAGES_BELOW, RENDER_MESSAGES=False):
        assert shown(browser, user) == {"host": 1, "byok": 0, "total": 1}


def test_auto_cannot_see_messages_rendered_after_the_content(browser, user, host):
    """Documented: a layout that renders them below ``content`` needs ``False``."""
    with host(MESSAGES_BELOW):
        assert shown(browser, user) == {"host": 1, "byok": 1, "total": 2}


def test_render_messages_true_always_shows_them(browser, user, host):
    with host(MESSAGES_ABOVE, RENDER_MESSAGES=True):
        assert shown(browser, user) == {"host": 1, "byok": 1, "total": 2}


def test_render_messages_false_with_byoks_base_shows_none(browser, user, host):
    with host(RENDER_MESSAGES=False):
        assert shown(browser, user) == {"host": 0, "byok": 0, "total": 0}
