"""Who may call what on a team's routes: owner, admin, member, outsider, anonymous.

One table, every route and method. A refused call changes nothing (the team's keys
and the audit trail are as they were), and no answer but ``reveal/``'s holds a secret.
"""

import pytest
from django.forms.models import model_to_dict

from byok.models import AuditEvent, TeamRole, UserAPIKey

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials, secret_values
from support import client_for

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/teams/"

ROUTES = [
    ("teams", "get", ""),
    ("team", "get", "{team}/"),
    ("members", "get", "{team}/members/"),
    ("usage", "get", "{team}/usage/"),
    ("stats", "get", "{team}/stats/"),
    ("keys", "get", "{team}/keys/"),
    ("create", "post", "{team}/keys/"),
    ("retrieve", "get", "{team}/keys/{id}/"),
    ("update", "put", "{team}/keys/{id}/"),
    ("partial_update", "patch", "{team}/keys/{id}/"),
    ("destroy", "delete", "{team}/keys/{id}/"),
    ("retest", "post", "{team}/keys/{id}/test/"),
    ("reveal", "post", "{team}/keys/{id}/reveal/"),
]

#: The status each role gets (anonymous: 401 or 403, whichever the host's
#: authentication says, on every route).
MATRIX = {
    #                 owner admin member outsider
    "teams": (200, 200, 200, 200),
    "team": (200, 200, 200, 404),
    "members": (200, 200, 200, 404),
    "usage": (200, 200, 200, 404),
    "stats": (200, 200, 200, 404),
    "keys": (200, 200, 200, 404),
    "create": (201, 201, 403, 404),
    "retrieve": (200, 200, 200, 404),
    "update": (200, 200, 403, 404),
    "partial_update": (200, 200, 403, 404),
    "destroy": (204, 204, 403, 404),
    "retest": (200, 200, 403, 404),
    "reveal": (200, 200, 404, 404),
}
ROLES = ["owner", "admin", "member", "outsider"]


def body_for(name):
    return {
        "create": {"service": "openai", "key": fake_credentials("openai"), "test": False},
        "update": {
            "nickname": "n",
            "environment": "production",
            "is_default": True,
            "is_active": True,
        },
        "partial_update": {"nickname": "patched"},
    }.get(name)


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def people(team):
    people = {role: UserFactory() for role in ("owner", "admin", "member", "outsider")}
    for role in (TeamRole.OWNER, TeamRole.ADMIN, TeamRole.MEMBER):
        team.add_member(people[role], role)
    return people


@pytest.fixture
def team_key(team, people):
    return TeamAPIKeyFactory(team=team, actor=people["owner"])


def snapshot(team):
    keys = [model_to_dict(key) for key in UserAPIKey.objects.filter(team=team).order_by("pk")]
    return keys, AuditEvent.objects.count()


@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
@pytest.mark.parametrize(("name", "method", "path"), ROUTES, ids=[route[0] for route in ROUTES])
def test_team_access_matrix(role, name, method, path, team, people, team_key, provider):
    secrets = secret_values(team_key.get_credentials())
    body = body_for(name)
    if body and "key" in body:
        secrets.append(body["key"])
    before = snapshot(team)
    client = client_for(people.get(role))
    url = BASE + path.format(team=team.pk, id=team_key.pk)

    response = getattr(client, method)(url, body, format="json")

    if role == "anonymous":
        assert response.status_code in (401, 403), response.content
    else:
        assert response.status_code == MATRIX[name][ROLES.index(role)], response.content
    if response.status_code >= 400:
        assert snapshot(team) == before
    content = response.content.decode()
    if name != "reveal" or response.status_code != 200:
        assert not [secret for secret in secrets if secret in content]
    else:
        assert secrets[0] in content
    if response.status_code >= 400 and role == "outsider":
        assert "No team of yours has this id." in content  # the team is not told apart


def test_an_outsider_lists_their_own_teams_only(team, people):
    response = client_for(people["outsider"]).get(BASE)
    assert response.json() == []


@pytest.mark.parametrize("team_id", ["abc", "0", "99999999999999999999", "-1", "1.5", "%00"])
@pytest.mark.parametrize("suffix", ["", "members/", "usage/", "keys/", "keys/{id}/"])
def test_an_id_that_is_not_a_team_of_yours_is_a_404(team_id, suffix, people, team_key):
    client = client_for(people["owner"])
    response = client.get(BASE + team_id + "/" + suffix.format(id=team_key.pk))
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "No team of yours has this id."}


def test_a_key_of_another_team_or_user_is_not_found_under_this_team(team, people, provider):
    elsewhere = TeamAPIKeyFactory(team=TeamFactory(owner=people["owner"]), actor=people["owner"])
    own = UserAPIKeyFactory(user=people["owner"])
    client = client_for(people["owner"])
    for key in (elsewhere, own):
        before = model_to_dict(UserAPIKey.objects.get(pk=key.pk))
        for method, path in [("get", ""), ("patch", ""), ("delete", ""), ("post", "reveal/")]:
            url = f"{BASE}{team.pk}/keys/{key.pk}/{path}"
            response = getattr(client, method)(url, {"nickname": "x"}, format="json")
            assert response.status_code == 404, response.content
        assert model_to_dict(UserAPIKey.objects.get(pk=key.pk)) == before


def test_a_member_who_leaves_loses_access_at_once(team, people, team_key):
    client = client_for(people["member"])
    assert client.get(f"{BASE}{team.pk}/keys/").status_code == 200
    team.remove_member(people["member"])
    assert client.get(f"{BASE}{team.pk}/keys/").status_code == 404
    assert client.get(f"{BASE}{team.pk}/keys/{team_key.pk}/").status_code == 404
