"""The admin's key list fits a 1280 by 800 screen: no sideways scrolling to its last
columns, with the filters open and long but ordinary values in every column."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from byok.models import UserAPIKey

from factories import UserAPIKeyFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def context_options():
    return {"viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def staff(context, live_server):
    """A superuser signed in in the browser."""
    user = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    return user


@pytest.fixture
def keys():
    """Keys of every service, for owners with long logins, in every status."""
    owners = [
        UserFactory(email=f"alexandra.montgomery-{n}@engineering.example.com")
        if "email" in {f.name for f in UserFactory._meta.model._meta.get_fields()}
        else UserFactory()
        for n in range(3)
    ]
    statuses = [choice for choice, _ in UserAPIKey._meta.get_field("status").choices]
    services = [
        "openai",
        "google_analytics",
        "aws_s3",
        "cloudinary",
        "mixpanel",
        "twilio",
        "stripe",
        "sentry",
    ]
    now = timezone.now()
    rows = []
    for index, service in enumerate(services):
        key = UserAPIKeyFactory(
            user=owners[index % len(owners)],
            service=service,
            nickname="Customer support assistant (staging)",
            environment=["production", "test", "development"][index % 3],
        )
        UserAPIKey.objects.filter(pk=key.pk).update(
            status=statuses[index % len(statuses)],
            usage_count=1_234_567,
            last_used_at=now - timedelta(days=index),
        )
        rows.append(key)
    return rows


def overflow(page):
    """How far the result list and the page reach past their width, in pixels."""
    return page.evaluate(
        """() => {
            const results = document.querySelector('#changelist .results');
            return {
                results: results.scrollWidth - results.clientWidth,
                page: document.documentElement.scrollWidth - window.innerWidth,
            };
        }"""
    )


def test_the_key_list_fits_1280_pixels(page, expect, staff, keys):
    page.goto(reverse("admin:byok_userapikey_changelist"))
    expect(page.locator("#result_list tbody tr")).to_have_count(len(keys))
    expect(page.locator("#changelist-filter")).to_be_visible()
    expect(page.locator("#nav-sidebar")).to_be_visible()
    assert overflow(page) == {"results": 0, "page": 0}
    headers = page.locator("#result_list thead th:not(.action-checkbox-column)")
    expect(headers).to_have_text(["Key", "Owner", "Service", "Status", "Calls", "Last used"])
    # Every column is on screen, the last one included.
    last = page.locator("#result_list thead th").last.bounding_box()
    assert last["x"] + last["width"] <= 1280
