"""Regenerate the screenshots in docs/images/ from the real pages.

    .venv/bin/python docs/screenshots.py

Runs on the test settings (an in-memory SQLite database unless ``DATABASE_URL``
says otherwise), with a demo user, a few fake keys and 30 days of usage, behind
Django's live server thread, and drives Chromium with Playwright. No request
leaves the machine: the providers' answers to the connection tests are mocked.
``BYOK_CHROMIUM`` points at another Chromium binary (default /usr/bin/chromium).

The Bootstrap 5 picture (docs/pages.md, "Theming") puts the dashboard in a
cookiecutter-style Bootstrap layout, themed by the stylesheet shown in the docs.
Bootstrap's CSS is not part of the repository: ``BYOK_BOOTSTRAP_CSS`` names a
``bootstrap.min.css``, or the script fetches the package with ``npm pack``.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}

sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
# Playwright's sync API keeps an asyncio loop running in this thread.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import django  # noqa: E402

django.setup()

import responses  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.testcases import LiveServerThread  # noqa: E402
from django.test.utils import (  # noqa: E402
    setup_databases,
    setup_test_environment,
    teardown_databases,
    teardown_test_environment,
)
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

import byok  # noqa: E402
from byok.budgets import period_start  # noqa: E402
from byok.models import Budget, BudgetSource, KeyUsage, PlatformUsage, UserAPIKey  # noqa: E402

from factories import UserAPIKeyFactory, UserFactory  # noqa: E402
from fakes import fake_credentials  # noqa: E402
from support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

#: The site's allowance on its own key, for the settings card and the Budgets page.
ALLOWANCE = {"name": "free-allowance", "limit": "20.00", "applies_to": "platform"}


def demo_data():
    """A user with three keys (tested against mocked providers), 30 days of usage per
    model, the site's allowance and two budgets of the user's own."""
    user = UserFactory(email="ada@example.com")
    with responses.RequestsMock() as mock:
        mock.get("https://api.openai.com/v1/models", json={"object": "list", "data": []})
        mock.get(
            "https://api.stripe.com/v1/balance", json={"object": "balance", "livemode": False}
        )
        openai = UserAPIKeyFactory(user=user, service="openai", nickname="Work", test=True)
        stripe = UserAPIKeyFactory(
            user=user, service="stripe", nickname="Shop", environment="test", test=True
        )
    UserAPIKeyFactory(user=user, service="resend", nickname="Newsletter")
    numbers = random.Random(2024)  # noqa: S311 (not secrets: the same pictures every time)
    today = timezone.localdate()
    for day in range(30):
        date = today - timedelta(days=day)
        weekday = date.weekday() < 5
        calls = numbers.randint(60, 140) if weekday else numbers.randint(10, 40)
        KeyUsage.objects.create(
            key=openai,
            date=date,
            model="gpt-4o-mini",
            calls=calls,
            input_tokens=calls * 700,
            output_tokens=calls * 200,
            cost=Decimal(calls) / 250,
            **measurements(calls, errors=calls // 50, limited=0, spread=(0, 0, 4, 4, 2, 0)),
        )
        if day % 7 == 3:  # now and then a fine-tuned model no price table lists
            KeyUsage.objects.create(
                key=openai,
                date=date,
                model="ft:gpt-4o-mini:acme",
                calls=4,
                unpriced_calls=4,
                cost=Decimal("0.008"),
            )
        stripe_calls = numbers.randint(5, 30)
        KeyUsage.objects.create(key=stripe, date=date, calls=stripe_calls, cost=Decimal(0))
        if day >= 12:  # the platform's key served Anthropic until the user brings one
            platform = numbers.randint(20, 60)
            PlatformUsage.objects.create(
                user=user,
                service="anthropic",
                environment="production",
                date=date,
                model="claude-haiku-4-5",
                calls=platform,
                input_tokens=platform * 500,
                output_tokens=platform * 200,
                cost=Decimal(platform) / 200,
                **measurements(
                    platform, errors=1, limited=platform // 8, spread=(0, 0, 0, 3, 4, 3)
                ),
            )
    for key in (openai, stripe):
        total = sum(KeyUsage.objects.filter(key=key).values_list("calls", flat=True))
        UserAPIKey.objects.filter(pk=key.pk).update(usage_count=total)
    # What the budgets spent this month: the rows above were written without metering.
    month = period_start("month", today)
    own = byok.set_budget(user, limit="40", service="openai", action="block")
    byok.set_budget(user, limit="5", period="week", service="stripe")
    Budget.objects.filter(pk=own.pk).update(
        spent=month_cost(KeyUsage.objects.filter(key=openai), month), period_start=month
    )
    Budget.objects.create(
        user=user,
        applies_to="platform",
        action="block",
        source=BudgetSource.SITE,
        default_name=ALLOWANCE["name"],
        spent=month_cost(PlatformUsage.objects.filter(user=user), month),
        period_start=month,
    )
    return user


def measurements(calls, *, errors, limited, spread):
    """Outcome and latency counters for ``calls`` calls: ``spread`` weighs the latency
    buckets up to 2,500 ms; what rounding leaves goes to the slowest weighted one."""
    buckets = [f"latency_le_{bound}" for bound in (50, 100, 250, 500, 1000, 2500)]
    counts = {
        name: calls * weight // sum(spread) for name, weight in zip(buckets, spread, strict=True)
    }
    slowest = buckets[max(index for index, weight in enumerate(spread) if weight)]
    counts[slowest] += calls - sum(counts.values())
    return {
        "ok_calls": calls - errors - limited,
        "server_errors": errors,
        "rate_limited": limited,
        **counts,
    }


def month_cost(usage, month):
    return sum(usage.filter(date__gte=month).values_list("cost", flat=True), Decimal(0))


def start_server():
    """Django's live server thread, static files included, sharing an in-memory SQLite."""
    shared = {
        connection.alias: connection
        for connection in connections.all()
        if connection.vendor == "sqlite" and connection.is_in_memory_db()
    }
    for connection in shared.values():
        connection.inc_thread_sharing()
    thread = LiveServerThread("localhost", StaticFilesHandler, connections_override=shared, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    return thread, f"http://{thread.host}:{thread.port}"


def shoot(browser, base_url, session, options):
    context = browser.new_context(base_url=base_url, **options)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}]
    )
    return context, context.new_page()


# A cookiecutter-django style layout: Bootstrap, a navbar, the messages as alerts
# above the content block, and the site's stylesheet for byok.
BOOTSTRAP_LAYOUT = """{% load static %}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · Acme</title>
<link href="{% static 'bootstrap/bootstrap.min.css' %}" rel="stylesheet">
<link href="{% static 'site/byok-theme.css' %}" rel="stylesheet">
</head>
<body>
<div class="mb-1">
  <nav class="navbar navbar-expand-md navbar-light bg-light">
    <div class="container-fluid">
      <a class="navbar-brand" href="/">Acme</a>
      <ul class="navbar-nav me-auto">
        <li class="nav-item"><a class="nav-link" href="/">Home</a></li>
        <li class="nav-item"><a class="nav-link active" href="#">API keys</a></li>
        <li class="nav-item"><a class="nav-link" href="#">My profile</a></li>
      </ul>
    </div>
  </nav>
</div>
<div class="container">
  {% for message in messages %}
  <div class="alert alert-dismissible alert-{{ message.tags }}">{{ message }}
    <button type="button" class="btn-close" aria-label="Close"></button></div>
  {% endfor %}
  {% block content %}{% endblock %}
</div>
</body>
</html>"""


def bootstrap_css(folder):
    """Bootstrap 5's stylesheet: ``BYOK_BOOTSTRAP_CSS``, or the npm package's."""
    if os.environ.get("BYOK_BOOTSTRAP_CSS"):
        return Path(os.environ["BYOK_BOOTSTRAP_CSS"]).read_text()
    packed = subprocess.run(  # noqa: S603 (a fixed command)
        ["npm", "pack", "bootstrap@5", "--pack-destination", str(folder)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    with tarfile.open(folder / packed) as archive:
        member = archive.extractfile("package/dist/css/bootstrap.min.css")
        assert member is not None
        return member.read().decode()


def theme_css():
    """The stylesheet docs/pages.md shows for a Bootstrap 5 site: the picture is of it."""
    pages = (ROOT / "docs" / "pages.md").read_text()
    section = pages.split("### A Bootstrap 5 site", 1)[1]
    return re.search(r"```css\n(.*?)```", section, flags=re.DOTALL).group(1)


@contextmanager
def bootstrap_host():
    """byok's pages inside BOOTSTRAP_LAYOUT, its stylesheets served as static files."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for name, text in {
            "templates/bootstrap_layout.html": BOOTSTRAP_LAYOUT,
            "bootstrap/bootstrap.min.css": bootstrap_css(folder),
            "site/byok-theme.css": theme_css(),
        }.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        with override_settings(
            TEMPLATES=[{**settings.TEMPLATES[0], "DIRS": [str(folder / "templates")]}],
            STATICFILES_DIRS=[
                ("bootstrap", str(folder / "bootstrap")),
                ("site", str(folder / "site")),
            ],
            BYOK={**settings.BYOK, "BASE_TEMPLATE": "bootstrap_layout.html"},
        ):
            yield


def take_screenshots(browser, base_url, session):
    dashboard = reverse("byok:dashboard")

    context, page = shoot(browser, base_url, session, DESKTOP)
    page.goto(dashboard)
    # The first visit's banner, dismissed (for the session): the keys show instead.
    page.get_by_role("button", name="Dismiss").click()
    page.locator("[data-byok-banner]").wait_for(state="detached")
    page.screenshot(path=IMAGES / "dashboard.png")
    page.locator("#byok-service-anthropic [data-byok-open]").click()
    dialog = page.locator("#byok-dialog-anthropic")
    dialog.get_by_label("API key").fill(fake_credentials("anthropic"))
    dialog.get_by_label("Nickname").fill("Side project")
    page.screenshot(path=IMAGES / "add-key-dialog.png")
    page.goto(reverse("byok:usage"))
    page.screenshot(path=IMAGES / "usage.png", full_page=True)
    page.goto(reverse("byok:budgets"))
    page.screenshot(path=IMAGES / "budgets.png", full_page=True)
    take_comparison_screenshot(page)
    page.goto(reverse("settings"))
    page.locator(".byok-settings-card").screenshot(path=IMAGES / "settings-card.png")
    context.close()

    context, page = shoot(browser, base_url, session, PHONE)
    page.goto(dashboard)
    page.screenshot(path=IMAGES / "dashboard-mobile.png")
    context.close()


def take_comparison_screenshot(page):
    page.goto(reverse("byok:compare") + "?period=30")
    page.screenshot(path=IMAGES / "compare.png", full_page=True)


def take_bootstrap_screenshot(browser, base_url, client, key):
    """The dashboard in a Bootstrap layout, after "Test again": the message shows once,
    as the layout's alert."""
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    with bootstrap_host():
        with responses.RequestsMock() as mock:
            mock.get("https://api.openai.com/v1/models", json={"object": "list", "data": []})
            client.post(reverse("byok:test", args=[key.pk]))
        context, page = shoot(browser, base_url, session, DESKTOP)
        context.add_cookies(
            [
                {"name": name, "value": cookie.value, "url": base_url}
                for name, cookie in client.cookies.items()
                if name != settings.SESSION_COOKIE_NAME
            ]
        )
        page.goto(reverse("byok:dashboard"))
        page.screenshot(path=IMAGES / "bootstrap-host.png")
        context.close()


@override_settings(BYOK={**settings.BYOK, "DEFAULT_BUDGETS": [ALLOWANCE]})
def main():
    IMAGES.mkdir(parents=True, exist_ok=True)
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    server = None
    try:
        user = demo_data()
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        server, base_url = start_server()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            take_screenshots(browser, base_url, session)
            openai = UserAPIKey.objects.get(user=user, service="openai")
            take_bootstrap_screenshot(browser, base_url, client, openai)
            browser.close()
    finally:
        if server is not None:
            server.terminate()
            for connection in server.connections_override.values():
                connection.dec_thread_sharing()
        teardown_databases(databases, verbosity=0)
        teardown_test_environment()
    for name in sorted(IMAGES.glob("*.png")):
        print(name.relative_to(ROOT))


if __name__ == "__main__":
    main()
