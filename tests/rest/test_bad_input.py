"""Every bad input gets a clear 4xx and changes nothing; never a 500."""

import json

import pytest

from byok.models import UserAPIKey

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory
from fakes import fake_credentials
from support import raw_byok_tables

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/"


@pytest.fixture
def key(user):
    return UserAPIKeyFactory(user=user)


def send(api, method, url, raw, content_type="application/json"):
    return getattr(api, method)(url, data=raw, content_type=content_type)


BAD_CREATES = [
    ("malformed-json", b'{"service": "openai", "key": ', "application/json"),
    ("not-utf8", b'{"service": "openai", "key": "\xff\xfe"}', "application/json"),
    ("a-list", b'["openai"]', "application/json"),
    ("empty-body", b"", "application/json"),
    ("empty-object", b"{}", "application/json"),
    ("form-encoded", b"service=openai&key=sk-abc", "application/x-www-form-urlencoded"),
    ("service-a-number", {"service": 5, "key": "sk-x"}, None),
    ("unknown-service", {"service": "nope", "key": "sk-x"}, None),
    ("credentials-a-string", {"service": "openai", "credentials": "sk-x"}, None),
    ("credentials-a-list", {"service": "openai", "credentials": ["sk-x"]}, None),
    ("credential-a-number", {"service": "openai", "credentials": {"api_key": 12345}}, None),
    ("credential-null", {"service": "openai", "credentials": {"api_key": None}}, None),
    (
        "unknown-credential-field",
        {"service": "openai", "credentials": {"api_key": "sk-" + "a1" * 30, "org": "x"}},
        None,
    ),
    (
        "both-key-and-credentials",
        {"service": "openai", "key": "sk-x", "credentials": {"api_key": "sk-x"}},
        None,
    ),
    ("unknown-field", {"service": "openai", "key": "sk-x", "owner": 1}, None),
    ("oversize", {"service": "openai", "key": "sk-" + "a" * 10_000}, None),
    ("nul-byte", {"service": "openai", "key": "sk-abc\u0000def" + "a" * 40}, None),
    ("control-chars", {"service": "openai", "key": "sk-\u0007\u001b" + "a" * 40}, None),
    ("non-ascii", {"service": "openai", "key": "sk-" + "ключ" * 12}, None),
    ("nickname-a-list", {"service": "openai", "key": "sk-x", "nickname": ["a"]}, None),
    ("nickname-too-long", {"service": "openai", "key": "sk-x", "nickname": "n" * 101}, None),
    ("bad-environment", {"service": "openai", "key": "sk-x", "environment": "staging"}, None),
    ("is-default-a-word", {"service": "openai", "key": "sk-x", "is_default": "maybe"}, None),
    ("test-a-dict", {"service": "openai", "key": "sk-x", "test": {}}, None),
    ("key-for-a-multi-field-service", {"service": "twilio", "key": "AC" + "0" * 32}, None),
]


@pytest.mark.parametrize(
    ("name", "body", "content_type"), BAD_CREATES, ids=[b[0] for b in BAD_CREATES]
)
def test_bad_creates_are_4xx_and_change_nothing(api, key, name, body, content_type):
    before = raw_byok_tables()
    if content_type is None:
        response = api.post(BASE, body, format="json")
    else:
        response = send(api, "post", BASE, body, content_type)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.content)
    assert response.json(), "a clear message"
    assert raw_byok_tables() == before


def test_huge_bodies_are_refused(api, key):
    before = raw_byok_tables()
    body = json.dumps({"service": "openai", "key": "sk-" + "a" * 3_000_000})
    response = send(api, "post", BASE, body)
    assert 400 <= response.status_code < 500
    assert raw_byok_tables() == before


@pytest.mark.parametrize(
    "path", ["not-a-uuid/", "12345/", "00000000-0000-0000-0000-000000000000/", "%00/", "..%2F/"]
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_bad_or_unknown_ids_are_404(api, key, path, method):
    before = raw_byok_tables()
    response = getattr(api, method)(BASE + path, {"nickname": "x"}, format="json")
    assert response.status_code == 404
    assert raw_byok_tables() == before


def test_another_users_id_is_404_and_changes_nothing(api, key):
    theirs = UserAPIKeyFactory()
    before = raw_byok_tables()
    for method, suffix in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "reveal/"),
        ("post", "test/"),
    ]:
        response = getattr(api, method)(
            f"{BASE}{theirs.pk}/{suffix}", {"nickname": "x"}, format="json"
        )
        assert response.status_code == 404, (method, suffix)
    assert raw_byok_tables() == before


BAD_UPDATES = [
    {"nickname": 5},
    {"environment": ""},
    {"is_active": "perhaps"},
    {"key": 42},
    {"credentials": {"api_key": "short"}, "test": False},
    {"credentials": {"nope": "x"}},
    {"service": "anthropic", "owner": "someone"},
    {"key": "sk-" + "b" * 50, "credentials": {"api_key": "sk-" + "b" * 50}},
]


@pytest.mark.parametrize("body", BAD_UPDATES)
def test_bad_updates_are_400_and_change_nothing(api, key, body):
    before = raw_byok_tables()
    response = api.patch(f"{BASE}{key.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert raw_byok_tables() == before


@pytest.mark.parametrize(
    "query",
    ["environment=staging", "status=great", "is_active=perhaps", "category=food"],
)
def test_bad_filters_are_400(api, key, query):
    assert api.get(f"{BASE}?{query}").status_code == 400


@pytest.mark.parametrize("query", ["days=0", "days=367", "days=x", "days=1e9"])
def test_bad_usage_queries_are_400(api, query):
    assert api.get(f"{BASE}usage/?{query}").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"service": "openai"},
        {"service": "nope", "key": "x"},
        {"key": 5},
        {"service": "openai", "key": "x", "extra": 1},
    ],
)
def test_bad_candidates_are_400(api, body):
    assert api.post(f"{BASE}test/", body, format="json").status_code == 400
    assert not UserAPIKey.objects.exists()


def test_bad_ordering_is_ignored_not_an_error(api, key):
    assert api.get(f"{BASE}?ordering=credentials").status_code == 200


def test_error_messages_never_echo_the_value(api):
    secret = "sk-" + "ключ" * 12
    response = api.post(BASE, {"service": "openai", "key": secret}, format="json")
    assert secret not in response.content.decode()
    assert fake_credentials("openai")[:12] not in response.content.decode()


# team keys: the same bodies, the same answers -----------------------------------------


@pytest.fixture
def team_key(user):
    return TeamAPIKeyFactory(team=TeamFactory(owner=user), actor=user)


def team_url(key, suffix=""):
    return f"{BASE}teams/{key.team_id}/keys/{suffix}"


@pytest.mark.parametrize(
    ("name", "body", "content_type"), BAD_CREATES, ids=[b[0] for b in BAD_CREATES]
)
def test_bad_creates_of_team_keys_are_4xx_and_change_nothing(
    api, team_key, name, body, content_type
):
    before = raw_byok_tables()
    if content_type is None:
        response = api.post(team_url(team_key), body, format="json")
    else:
        response = send(api, "post", team_url(team_key), body, content_type)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.content)
    assert response.json(), "a clear message"
    assert raw_byok_tables() == before


@pytest.mark.parametrize("body", BAD_UPDATES)
def test_bad_team_key_updates_are_400_and_change_nothing(api, team_key, body):
    before = raw_byok_tables()
    response = api.patch(team_url(team_key, f"{team_key.pk}/"), body, format="json")
    assert response.status_code == 400, response.content
    assert raw_byok_tables() == before


@pytest.mark.parametrize(
    "path", ["not-a-uuid/", "12345/", "00000000-0000-0000-0000-000000000000/", "%00/", "..%2F/"]
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_bad_or_unknown_team_key_ids_are_404(api, team_key, path, method):
    before = raw_byok_tables()
    response = getattr(api, method)(team_url(team_key, path), {"nickname": "x"}, format="json")
    assert response.status_code == 404
    assert raw_byok_tables() == before


@pytest.mark.parametrize("query", ["days=0", "days=367", "days=x", "days=1e9", "service=a b"])
def test_bad_team_usage_queries_are_400(api, team_key, query):
    assert api.get(f"{BASE}teams/{team_key.team_id}/usage/?{query}").status_code == 400


@pytest.mark.parametrize("query", ["environment=staging", "status=great", "is_active=perhaps"])
def test_bad_team_key_filters_are_400(api, team_key, query):
    assert api.get(team_url(team_key, f"?{query}")).status_code == 400
