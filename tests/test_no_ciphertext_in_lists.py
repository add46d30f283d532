"""The pages, the REST API and the admin list keys without fetching the ciphertext
column: they never decrypt it. The REST routes that decrypt fetch it with the key."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from byok.models import UserAPIKey

from factories import UserAPIKeyFactory
from support import client_for

pytestmark = pytest.mark.django_db

CIPHERTEXT = connection.ops.quote_name(UserAPIKey._meta.get_field("credentials").column)
TABLE = UserAPIKey._meta.db_table


def key_selects(queries):
    """The statements that read the keys table."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("SELECT") and TABLE in query["sql"]
    ]


def fetched_ciphertext(queries):
    selects = key_selects(queries)
    assert selects, "no query read the keys"
    return [sql for sql in selects if CIPHERTEXT in sql.split(" FROM ")[0]]


@pytest.fixture
def keys(user):
    return [UserAPIKeyFactory(user=user), UserAPIKeyFactory(user=user, service="stripe")]


def test_the_list_endpoint_never_fetches_the_ciphertext(user, keys):
    api = client_for(user)
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/user/api-keys/").status_code == 200
        assert api.get(f"/api/user/api-keys/{keys[0].pk}/").status_code == 200
    assert fetched_ciphertext(queries) == []


def test_the_dashboard_never_fetches_the_ciphertext(client, user, keys):
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("byok:dashboard")).status_code == 200
    assert fetched_ciphertext(queries) == []


def test_the_admin_never_fetches_the_ciphertext(admin_client, keys):
    with CaptureQueriesContext(connection) as queries:
        changelist = admin_client.get(reverse("admin:byok_userapikey_changelist"))
        change = admin_client.get(reverse("admin:byok_userapikey_change", args=[keys[0].pk]))
    assert (changelist.status_code, change.status_code) == (200, 200)
    assert fetched_ciphertext(queries) == []


def test_re_testing_and_revealing_still_decrypt(user, keys, provider):
    api = client_for(user)
    with CaptureQueriesContext(connection) as queries:
        assert api.post(f"/api/user/api-keys/{keys[0].pk}/reveal/").status_code == 200
    assert fetched_ciphertext(queries)  # the one statement that reads the key holds it


@pytest.mark.parametrize("action", ["test", "reveal"])
def test_retest_and_reveal_fetch_the_ciphertext_with_the_key(user, keys, provider, action):
    """The two routes that decrypt read the key whole at once, not its ciphertext after."""
    with CaptureQueriesContext(connection) as queries:
        response = client_for(user).post(f"/api/user/api-keys/{keys[0].pk}/{action}/")
    assert response.status_code == 200
    first, *_ = key_selects(queries)
    assert CIPHERTEXT in first.split(" FROM ")[0]
    assert len(fetched_ciphertext(queries)) == 1
