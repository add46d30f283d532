"""Key age, last use and expiry: on the key, in the REST API, on the dashboard, in the
admin."""

from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from byok.key_age import key_age
from byok.keys import test_user_api_key, update_user_api_key
from byok.models import UserAPIKey
from byok.services.base import parse_expiry

from factories import UserAPIKeyFactory
from fakes import fake_credentials, github_token
from support import aged, client_for, with_byok

pytestmark = pytest.mark.django_db

API = "/api/user/api-keys/"
GITHUB = "https://api.github.com/user"
EXPIRY_HEADER = "github-authentication-token-expiration"


def days_ago(days):
    return timezone.now() - timedelta(days=days)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2031-02-03", "2031-02-03T00:00:00+00:00"),
        ("2031-02-03 04:05:06 UTC", "2031-02-03T04:05:06+00:00"),
        ("2031-02-03 04:05:06 -0700", "2031-02-03T11:05:06+00:00"),
        ("2031-02-03T04:05Z", "2031-02-03T04:05:00+00:00"),
        ("2031-02-03 04:05:06 +05:30", "2031-02-02T22:35:06+00:00"),
    ],
)
def test_expiry_dates_are_read_as_aware_utc(text, expected):
    assert parse_expiry(text).isoformat() == expected


@pytest.mark.parametrize("text", ["", "soon", "2031-13-01", "2031-02-03 25:00", "03/02/2031"])
def test_anything_else_is_no_expiry(text):
    assert parse_expiry(text) is None


def test_a_new_key_is_young_unused_and_without_expiry(user):
    found = key_age(UserAPIKeyFactory(user=user))
    assert (found.age_days, found.secret_age_days, found.unused_days) == (0, 0, 0)
    assert (found.ever_used, found.expires_in_days, found.reminders) == (False, None, [])


def test_ages_count_whole_days(user):
    key = aged(
        UserAPIKeyFactory(user=user),
        created_at=days_ago(400),
        secret_changed_at=days_ago(30),
        last_used_at=days_ago(12),
        expires_at=timezone.now() + timedelta(days=5, hours=2),
    )
    found = key_age(key)
    assert (found.age_days, found.secret_age_days, found.unused_days) == (400, 30, 12)
    assert found.expires_in_days == 5
    assert [b.text for b in found.badges] == ["expires in 5 days"]


@with_byok(ROTATION_REMINDER_DAYS=365, UNUSED_REMINDER_DAYS=90)
def test_badges_follow_the_policies(user):
    key = aged(
        UserAPIKeyFactory(user=user),
        created_at=days_ago(500),
        secret_changed_at=days_ago(400),
        expires_at=days_ago(1),
    )
    assert [(b.code, b.text, b.level) for b in key_age(key).badges] == [
        ("expired", "expired", "danger"),
        ("rotation_due", "older than your rotation policy", "warning"),
        ("unused", "never used in 500 days", "info"),
    ]
    aged(key, last_used_at=days_ago(120))
    assert key_age(key).badges[-1].text == "unused for 120 days"


def test_a_replaced_secret_is_dated_and_forgets_the_old_expiry(user, provider):
    key = aged(
        UserAPIKeyFactory(user=user),
        secret_changed_at=days_ago(50),
        expires_at=timezone.now() + timedelta(days=3),
        expiry_source="user",
    )
    update_user_api_key(key, credentials=fake_credentials("openai"), test=False)
    key.refresh_from_db()
    assert key_age(key).secret_age_days == 0
    assert (key.expires_at, key.expiry_source) == (None, "")


def test_a_test_stores_the_expiry_the_provider_tells(user):
    key = UserAPIKeyFactory(user=user, service="github", credentials=github_token())
    with responses.RequestsMock() as mocked:
        mocked.get(GITHUB, json={"login": "x"}, headers={EXPIRY_HEADER: "2031-02-03 04:05:06 UTC"})
        test_user_api_key(key)
    key.refresh_from_db()
    assert key.expires_at.isoformat() == "2031-02-03T04:05:06+00:00"
    assert key.expiry_source == "provider"


def test_the_providers_expiry_wins_over_the_owners(user):
    with responses.RequestsMock() as mocked:
        mocked.get(GITHUB, json={"login": "x"}, headers={EXPIRY_HEADER: "2031-02-03"})
        key = UserAPIKeyFactory(
            user=user,
            service="github",
            credentials=github_token(),
            test=True,
            expires_at=timezone.now() + timedelta(1),
        )
    assert (key.expires_at.date().isoformat(), key.expiry_source) == ("2031-02-03", "provider")


# -- REST ----------------------------------------------------------------------------------


def test_the_api_shows_ages_and_reminders(user):
    key = aged(UserAPIKeyFactory(user=user), last_used_at=days_ago(2), expires_at=days_ago(-10))
    body = client_for(user).get(f"{API}{key.pk}/").json()
    assert body["secret_changed_at"] == key.secret_changed_at.isoformat().replace("+00:00", "Z")
    assert (body["age_days"], body["unused_days"], body["expires_in_days"]) == (0, 2, 9)
    assert (body["expiry_source"], body["reminders"]) == ("", ["expires_soon"])


def test_an_owner_sets_and_clears_the_expiry(user):
    key = UserAPIKeyFactory(user=user)
    api = client_for(user)
    response = api.patch(f"{API}{key.pk}/", {"expires_at": "2031-05-01T00:00:00Z"})
    assert response.status_code == 200
    assert (response.json()["expires_at"], response.json()["expiry_source"]) == (
        "2031-05-01T00:00:00Z",
        "user",
    )
    cleared = api.patch(f"{API}{key.pk}/", {"expires_at": None}).json()
    assert (cleared["expires_at"], cleared["expiry_source"]) == (None, "")
    untouched = api.patch(f"{API}{key.pk}/", {"nickname": "n"}).json()
    assert untouched["expires_at"] is None


def test_a_new_key_can_carry_its_expiry(user):
    response = client_for(user).post(
        API,
        {"service": "openai", "key": fake_credentials("openai"), "test": False,
         "expires_at": "2031-05-01T10:00:00+02:00"},
    )  # fmt: skip
    assert response.status_code == 201
    assert response.json()["expires_at"] == "2031-05-01T08:00:00Z"


@pytest.mark.parametrize("value", ["soon", 5, "2031-02-30", ["2031-01-01"]])
def test_a_bad_expiry_is_a_400(user, value):
    key = UserAPIKeyFactory(user=user)
    response = client_for(user).patch(f"{API}{key.pk}/", {"expires_at": value})
    assert response.status_code == 400
    assert "expires_at" in response.json()


def test_the_list_costs_the_same_queries_with_more_keys(user):
    api = client_for(user)
    UserAPIKeyFactory(user=user)
    with CaptureQueriesContext(connection) as one:
        api.get(API)
    for _ in range(3):
        aged(UserAPIKeyFactory(user=user), expires_at=days_ago(-2), last_used_at=days_ago(3))
    with CaptureQueriesContext(connection) as four:
        body = api.get(API).json()
    assert len(one) == len(four)
    assert sum("expires_soon" in k["reminders"] for k in body) == 3


# -- The pages and the admin ---------------------------------------------------------------


@with_byok(UNUSED_REMINDER_DAYS=90, ROTATION_REMINDER_DAYS=365)
def test_the_dashboard_shows_the_badges_at_constant_queries(user, client):
    client.force_login(user)
    UserAPIKeyFactory(user=user)
    with CaptureQueriesContext(connection) as one:
        client.get("/dashboard/api-keys/")
    aged(UserAPIKeyFactory(user=user), expires_at=timezone.now() + timedelta(days=5, hours=1))
    aged(UserAPIKeyFactory(user=user), last_used_at=days_ago(120))
    aged(UserAPIKeyFactory(user=user), secret_changed_at=days_ago(400))
    with CaptureQueriesContext(connection) as four:
        page = client.get("/dashboard/api-keys/").content.decode()
    assert len(one) == len(four)
    assert "expires in 5 days" in page
    assert "unused for 120 days" in page
    assert "older than your rotation policy" in page
    assert 'data-byok-reminder="expires_soon"' in page


def test_the_add_form_takes_an_expiry_date(user, client, provider):
    client.force_login(user)
    response = client.post(
        "/dashboard/api-keys/add/openai/",
        {"api_key": fake_credentials("openai"), "environment": "production",
         "expires_on": "2031-05-01"},
    )  # fmt: skip
    assert response.status_code == 302
    key = UserAPIKey.objects.get()
    assert (key.expires_at.isoformat(), key.expiry_source) == ("2031-05-01T00:00:00+00:00", "user")


def test_a_bad_expiry_date_on_the_form_is_a_400(user, client):
    client.force_login(user)
    response = client.post(
        "/dashboard/api-keys/add/openai/",
        {"api_key": fake_credentials("openai"), "environment": "production",
         "expires_on": "someday"},
    )  # fmt: skip
    assert response.status_code == 400
    assert UserAPIKey.objects.count() == 0


@with_byok(ROTATION_REMINDER_DAYS=365, UNUSED_REMINDER_DAYS=90)
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("expires=0", {"expired"}),
        ("expires=14", {"expired", "soon"}),
        ("expires=unknown", {"old", "idle", "fresh"}),
        ("secret_age=policy", {"old"}),
        ("secret_age=90", {"old"}),
        ("unused=policy", {"idle"}),
        ("unused=30", {"idle"}),
    ],
)
def test_admin_filters_by_expiry_secret_age_and_last_use(admin_client, user, query, expected):
    keys = {
        "expired": aged(
            UserAPIKeyFactory(user=user), expires_at=days_ago(1), last_used_at=days_ago(1)
        ),
        "soon": aged(
            UserAPIKeyFactory(user=user), expires_at=days_ago(-3), last_used_at=days_ago(1)
        ),
        "old": aged(
            UserAPIKeyFactory(user=user), secret_changed_at=days_ago(400), last_used_at=days_ago(1)
        ),
        "idle": aged(UserAPIKeyFactory(user=user), last_used_at=days_ago(100)),
        "fresh": aged(UserAPIKeyFactory(user=user), last_used_at=days_ago(1)),
    }
    page = admin_client.get(f"/admin/byok/userapikey/?{query}").content.decode()
    shown = {name for name, key in keys.items() if str(key.pk) in page}
    assert shown == expected
