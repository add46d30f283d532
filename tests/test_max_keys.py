"""``BYOK["MAX_KEYS_PER_USER"]``: how many keys (not deleted) one user may hold, on
every way in, counted under the owner's lock so that parallel adds cannot pass it;
and the list endpoint and the dashboard stay bounded."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from test_keys import run_concurrently

import byok
from byok.conf import conf
from byok.importing import Outcome, import_file
from byok.keys import remove_user_api_key
from byok.models import UserAPIKey

from factories import TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import NO_INLINE_ROWS, with_row_locks

pytestmark = pytest.mark.django_db

API = "/api/user/api-keys/"
REFUSAL = "You already have 3 keys, the most this site allows: delete one to add another."


@pytest.fixture
def cap(settings):
    settings.BYOK = {**settings.BYOK, "MAX_KEYS_PER_USER": 3}
    return 3


def fill(user, count=3, service="github"):
    return [UserAPIKeyFactory(user=user, service=service) for _ in range(count)]


def test_the_default_cap_is_a_hundred_keys():
    assert conf.MAX_KEYS_PER_USER == 100


def test_the_helper_refuses_a_key_beyond_the_cap_and_deleted_keys_do_not_count(user, cap):
    keys = fill(user)
    with pytest.raises(ValidationError) as refused:
        byok.add_user_api_key(user, "openai", fake_credentials("openai"))
    assert (refused.value.code, refused.value.messages) == ("too_many_keys", [REFUSAL])
    remove_user_api_key(keys[0])
    byok.add_user_api_key(user, "openai", fake_credentials("openai"))
    assert UserAPIKey.objects.alive().filter(user=user).count() == 3
    other = UserFactory()  # the cap is per user
    fill(other)


def test_a_teams_keys_have_their_own_cap(user, cap):
    fill(user)
    team = TeamFactory(owner=user)
    for _ in range(3):
        byok.add_team_api_key(team, "github", fake_credentials("github"), actor=user)
    with pytest.raises(ValidationError) as refused:
        byok.add_team_api_key(team, "github", fake_credentials("github"), actor=user)
    assert refused.value.code == "too_many_keys"


def test_the_api_answers_400_at_the_cap_before_testing_anything(api, user, cap, mocked):
    fill(user)
    body = {"service": "openai", "key": fake_credentials("openai")}  # test defaults to true
    response = api.post(API, body, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [{"message": REFUSAL, "code": "too_many_keys"}]}
    assert not mocked.calls
    assert UserAPIKey.objects.count() == 3


def test_the_page_shows_the_cap_as_a_form_error(user, cap):
    fill(user)
    browser = Client()
    browser.force_login(user)
    form = {"api_key": fake_credentials("openai"), "environment": "production"}
    response = browser.post(reverse("byok:add", args=["openai"]), form)
    assert response.status_code == 400
    assert REFUSAL in response.content.decode()
    assert UserAPIKey.objects.count() == 3


def test_the_admin_shows_the_cap_as_a_form_error(user, superuser, cap):
    fill(user)
    admin = Client()
    admin.force_login(superuser)
    form = {
        "user": str(user.pk),
        "service": "openai",
        "nickname": "",
        "environment": "production",
        "is_active": "on",
        "secret": fake_credentials("openai"),
        **NO_INLINE_ROWS,
    }
    response = admin.post(reverse("admin:byok_userapikey_add"), form)
    assert response.status_code == 200
    assert REFUSAL in response.context["adminform"].form.non_field_errors()
    assert UserAPIKey.objects.count() == 3


@pytest.mark.parametrize("owner", ["user", "team"])
def test_the_admin_refuses_a_teams_key_at_the_cap_too(user, superuser, cap, owner):
    team = TeamFactory(owner=user)
    for _ in range(3):
        byok.add_team_api_key(team, "github", fake_credentials("github"), actor=user)
    fill(user)
    admin = Client()
    admin.force_login(superuser)
    form = {
        owner: str(user.pk if owner == "user" else team.pk),
        "service": "openai",
        "environment": "production",
        "is_active": "on",
        "secret": fake_credentials("openai"),
        **NO_INLINE_ROWS,
    }
    response = admin.post(reverse("admin:byok_userapikey_add"), form)
    assert response.status_code == 200
    assert (
        response.context["adminform"]
        .form.non_field_errors()[0]
        .startswith("You already have 3 keys")
    )
    assert UserAPIKey.objects.count() == 6


def test_a_place_taken_between_the_admins_check_and_its_save_is_a_message(
    user, superuser, cap, monkeypatch
):
    """The form found room; by the time it saves another request has filled it."""
    fill(user)
    monkeypatch.setattr("byok.admin.room_for_keys", lambda owner: 1)
    admin = Client(raise_request_exception=False)
    admin.force_login(superuser)
    secret = fake_credentials("openai")
    form = {
        "user": str(user.pk),
        "service": "openai",
        "environment": "production",
        "is_active": "on",
        "secret": secret,
        **NO_INLINE_ROWS,
    }
    url = reverse("admin:byok_userapikey_add")
    response = admin.post(url, form)
    assert (response.status_code, response["Location"]) == (302, url)
    page = admin.get(url).content.decode()
    assert REFUSAL in page
    assert secret not in page
    assert UserAPIKey.objects.count() == 3


def entries(count):
    return json.dumps(
        [{"service": "github", "credentials": fake_credentials("github")} for _ in range(count)]
    ).encode()


def test_an_import_stores_what_fits_and_reports_each_entry_beyond_the_cap(user, cap):
    fill(user, 1)
    report = import_file(user, entries(4))
    assert [entry.outcome for entry in report.entries] == [
        Outcome.IMPORTED,
        Outcome.IMPORTED,
        Outcome.TOO_MANY_KEYS,
        Outcome.TOO_MANY_KEYS,
    ]
    assert report.entries[3].message == REFUSAL
    assert UserAPIKey.objects.count() == 3


def test_an_atomic_import_over_the_cap_is_a_400_and_stores_nothing(api, user, cap):
    fill(user, 1)
    response = api.post(
        f"{API}import/", {"text": entries(3).decode(), "atomic": True}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["counts"] == {"not imported": 2, "too many keys": 1}
    assert body["file"][0]["code"] == "import_failed"
    assert UserAPIKey.objects.count() == 1


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_parallel_adds_cannot_pass_the_cap(settings):
    settings.BYOK = {**settings.BYOK, "MAX_KEYS_PER_USER": 5}
    user = UserFactory()
    fill(user, 2)

    def add():
        return byok.add_user_api_key(user, "github", fake_credentials("github"))

    results, errors = run_concurrently(add, 8)
    assert len(results) == 3
    assert {getattr(error, "code", error) for error in errors} == {"too_many_keys"}
    assert UserAPIKey.objects.alive().filter(user=user).count() == 5


# bounded reads -----------------------------------------------------------------------


def over_the_cap(user, count, settings):
    """``count`` keys, stored before the cap was lowered to 3."""
    fill(user, count)
    settings.BYOK = {**settings.BYOK, "MAX_KEYS_PER_USER": 3}


def test_the_list_without_pagination_holds_at_most_the_cap(api, user, settings):
    over_the_cap(user, 5, settings)
    response = api.get(API)
    assert response.status_code == 200
    newest = UserAPIKey.objects.order_by("-created_at").values_list("pk", flat=True)[:3]
    assert [key["id"] for key in response.json()] == [str(pk) for pk in newest]
    assert response["X-Byok-Truncated"] == "true"
    settings.BYOK = {**settings.BYOK, "MAX_KEYS_PER_USER": 5}
    response = api.get(API)
    assert len(response.json()) == 5
    assert "X-Byok-Truncated" not in response


def test_the_hosts_pagination_still_applies(api, user, settings):
    over_the_cap(user, 5, settings)
    settings.REST_FRAMEWORK = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
        "PAGE_SIZE": 2,
    }
    body = api.get(API).json()
    assert (body["count"], len(body["results"])) == (5, 2)


def dashboard_queries(user):
    browser = Client()
    browser.force_login(user)
    browser.get("/dashboard/api-keys/")  # the session and first-use caches
    with CaptureQueriesContext(connection) as queries:
        response = browser.get("/dashboard/api-keys/")
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_dashboards_queries_do_not_grow_with_keys_and_it_shows_at_most_the_cap(user, settings):
    fill(user, 1, service="openai")
    few, _page = dashboard_queries(user)
    fill(user, 3)
    fill(user, 3, service="resend")
    over_the_cap(user, 0, settings)
    many, page = dashboard_queries(user)
    assert many == few
    shown = [key.masked_key for key in UserAPIKey.objects.all() if key.masked_key in page]
    assert len(shown) == 3
