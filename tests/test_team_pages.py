"""The pages with teams: the switcher, a team's keys on the dashboard, their management
by owners and admins, and the usage of a team's keys per member.

Every role (owner, admin, member, outsider, anonymous) on every page and action; a
refused action changes nothing; query counts stay flat; no page holds a secret.
"""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.test.utils import CaptureQueriesContext

from byok.models import AuditEvent, TeamRole, UserAPIKey

from factories import (
    KeyUsageFactory,
    TeamAPIKeyFactory,
    TeamFactory,
    UserAPIKeyFactory,
    UserFactory,
)
from fakes import FAKES, fake_credentials, secret_values
from support import windows

pytestmark = pytest.mark.django_db

BASE = "/dashboard/api-keys/"
JSON = {"HTTP_ACCEPT": "application/json"}
ROLES = ["owner", "admin", "member", "outsider"]
MANAGERS = {"owner", "admin"}
#: Ids that are not one of the user's teams': malformed, another type, past a 64-bit
#: column, a NUL.
BAD_IDS = ["x", "1.5", "-1", "99999999999999999999999", "9223372036854775808", "%00", "0"]


@pytest.fixture
def team():
    return TeamFactory(name="Acme")


@pytest.fixture
def people(team):
    people = {role: UserFactory() for role in ROLES}
    for role in (TeamRole.OWNER, TeamRole.ADMIN, TeamRole.MEMBER):
        team.add_member(people[role], role)
    return people


@pytest.fixture
def secret():
    return fake_credentials("openai")


@pytest.fixture
def team_key(team, people, secret):
    return TeamAPIKeyFactory(
        team=team, actor=people["owner"], credentials=secret, nickname="Shared"
    )


def client_of(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def html(response):
    return response.content.decode()


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_no_secret(content, *secrets):
    """Neither a secret nor any twelve characters of it in a row (its long prefixes
    included): the masked form shows its well-known prefix and last four only."""
    for value in secrets:
        leaked = [window for window in windows(value, 12) if window in content]
        assert not leaked, leaked


def snapshot(team):
    keys = [model_to_dict(key) for key in UserAPIKey.objects.filter(team=team).order_by("pk")]
    return keys, AuditEvent.objects.count()


# the switcher ------------------------------------------------------------------------


def test_a_user_in_no_team_sees_no_switcher(user):
    page = html(client_of(user).get(BASE))
    assert "data-byok-team-switcher" not in page
    assert ">Personal</a>" not in page


def test_a_member_switches_between_personal_and_each_team(people, team):
    other = TeamFactory(name="Globex")
    other.add_member(people["member"], TeamRole.ADMIN)
    page = html(client_of(people["member"]).get(BASE))
    assert "data-byok-team-switcher" in page
    assert 'href="?" aria-current="page">Personal</a>' in page
    assert f'href="?team={team.pk}" data-byok-team="{team.pk}">Acme</a>' in page
    assert f'href="?team={other.pk}" data-byok-team="{other.pk}">Globex</a>' in page
    chosen = html(client_of(people["member"]).get(f"{BASE}?team={other.pk}"))
    assert f'data-byok-team="{other.pk}" aria-current="page">Globex</a>' in chosen
    assert "your role: Admin" in chosen


@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
@pytest.mark.parametrize("url", [BASE, f"{BASE}usage/"], ids=["dashboard", "usage"])
def test_who_may_open_a_teams_pages(role, url, team, people, team_key):
    response = client_of(people.get(role)).get(f"{url}?team={team.pk}")
    if role == "anonymous":
        assert response.status_code == 302
        assert "login" in response["Location"]
    elif role == "outsider":
        assert response.status_code == 404
    else:
        assert response.status_code == 200
        assert "Acme, your role:" in html(response)


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("url", [BASE, f"{BASE}usage/"], ids=["dashboard", "usage"])
def test_a_team_id_that_is_not_one_of_the_users_teams_is_a_404(bad, url, people):
    assert client_of(people["member"]).get(f"{url}?team={bad}").status_code == 404


def test_an_empty_team_is_the_personal_view(people, team_key):
    page = html(client_of(people["owner"]).get(f"{BASE}?team="))
    assert 'href="?" aria-current="page">Personal</a>' in page
    assert team_key.masked_key not in page


def queries_of(client, url):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


#: The dashboard's queries: the session, the user, the user's teams, the keys, the
#: budgets, three for the stats, the notification settings.
PERSONAL_QUERIES = 9
#: A team's: the session, the user, the user's teams, the team's keys, two for the
#: stats; for a member, one more: their calls on each key.
TEAM_QUERIES = {"owner": 6, "member": 7}


def test_the_switcher_costs_one_query_whatever_the_number_of_teams(
    user, django_assert_num_queries
):
    client = client_of(user)
    UserAPIKeyFactory(user=user)
    with django_assert_num_queries(PERSONAL_QUERIES):
        client.get(BASE)
    for n in range(3):
        TeamFactory(name=f"Team {n}").add_member(user, TeamRole.MEMBER)
    with django_assert_num_queries(PERSONAL_QUERIES):
        assert "data-byok-team-switcher" in html(client.get(BASE))


@pytest.mark.parametrize("role", ["owner", "member"])
def test_a_teams_dashboard_runs_the_same_queries_for_1_and_12_keys(role, team, people):
    client = client_of(people[role])
    services = list(FAKES)
    TeamAPIKeyFactory(team=team, actor=people["owner"], service=services[0])
    url = f"{BASE}?team={team.pk}"
    one = queries_of(client, url)
    for service in services[1:]:
        key = TeamAPIKeyFactory(team=team, actor=people["owner"], service=service)
        KeyUsageFactory(key=key, user=people["member"], calls=2)
    for n in range(3):
        TeamFactory(name=f"Team {n}").add_member(people[role], TeamRole.MEMBER)
    twelve = queries_of(client, url)
    assert html(client.get(url)).count("data-byok-key=") == 12
    assert one == twelve == TEAM_QUERIES[role]


# the team's keys on the dashboard ------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_manage_the_teams_keys_from_the_page(role, team, people, team_key):
    page = html(client_of(people[role]).get(f"{BASE}?team={team.pk}"))
    assert team_key.masked_key in page
    assert "Shared" in page
    prefix = f"{BASE}teams/{team.pk}/"
    assert f'action="{prefix}keys/{team_key.pk}/test/"' in page
    assert f'data-byok-remove="{prefix}keys/{team_key.pk}/remove/"' in page
    assert f'href="{prefix}add/openai/"' in page
    assert f'action="{prefix}add/openai/"' in page  # the dialog's form
    reveal = f"/api/user/api-keys/teams/{team.pk}/keys/{team_key.pk}/reveal/"
    assert f'data-byok-reveal="{reveal}"' in page
    assert "On the team's keys, every member's calls together." in page


def test_a_member_sees_the_teams_keys_masked_and_in_use_without_controls(team, people, team_key):
    KeyUsageFactory(key=team_key, user=people["member"], calls=3)
    KeyUsageFactory(key=team_key, user=people["admin"], calls=40)
    page = html(client_of(people["member"]).get(f"{BASE}?team={team.pk}"))
    assert team_key.masked_key in page
    assert "data-byok-in-use" in page
    assert "used by 3 calls of yours" in page
    assert "43 calls" not in page  # the team's total is for its managers
    for control in (
        "data-byok-reveal",
        "data-byok-copy",
        "reveal",
        "/test/",
        "/remove/",
        "/add/",
        "data-byok-open",
        "<dialog",
        'data-byok-form="test"',
    ):
        assert control not in page, control
    assert "On the team's keys, your calls only." in page


def test_a_members_key_not_used_by_them_says_so(team, people, team_key):
    page = html(client_of(people["member"]).get(f"{BASE}?team={team.pk}"))
    assert "not used by your calls yet" in page


def test_the_personal_view_and_the_teams_keep_their_keys_apart(team, people, team_key):
    own = UserAPIKeyFactory(user=people["owner"], nickname="Mine")
    client = client_of(people["owner"])
    personal = html(client.get(BASE))
    shown = html(client.get(f"{BASE}?team={team.pk}"))
    assert own.masked_key in personal
    assert team_key.masked_key not in personal
    assert team_key.masked_key in shown
    assert own.masked_key not in shown
    assert "1 / 12" in shown
    assert "E-mail me about my keys" in personal
    assert "E-mail me about my keys" not in shown


def test_category_tabs_keep_the_team(team, people, team_key):
    page = html(client_of(people["member"]).get(f"{BASE}?team={team.pk}&category=ai"))
    assert f'href="?team={team.pk}&amp;category=payment"' in page
    assert f'href="?team={team.pk}" data-byok-tab=""' in page


def test_reveal_is_not_offered_when_the_site_turns_it_off(team, people, team_key, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_REVEAL": False}
    page = html(client_of(people["owner"]).get(f"{BASE}?team={team.pk}"))
    assert "data-byok-reveal" not in page


# managing the team's keys --------------------------------------------------------------


def add(client, team, secret, **extra):
    return client.post(
        f"{BASE}teams/{team.pk}/add/openai/",
        {"api_key": secret, "nickname": "New", "environment": "production"},
        **extra,
    )


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_add_test_and_remove_with_plain_forms(role, team, people, provider):
    client = client_of(people[role])
    prefix = f"{BASE}teams/{team.pk}/"
    assert "Add a key for Acme: OpenAI" in html(client.get(f"{prefix}add/openai/"))

    response = add(client, team, fake_credentials("openai"))
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}?team={team.pk}"
    assert messages_of(response) == ["The OpenAI key of Acme was saved (not tested)."]
    key = UserAPIKey.objects.get(team=team)
    assert key.user is None

    response = client.post(f"{prefix}keys/{key.pk}/test/")
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}?team={team.pk}"
    assert messages_of(response)[-1] == "OpenAI accepted the key."

    confirm = client.get(f"{prefix}keys/{key.pk}/remove/")
    assert "Remove this key?" in html(confirm)
    assert f'href="{BASE}?team={team.pk}"' in html(confirm)
    response = client.post(f"{prefix}keys/{key.pk}/remove/")
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}?team={team.pk}"
    key.refresh_from_db()
    assert (key.credentials, key.deleted_at is not None) == (None, True)


def test_byok_js_gets_json_from_the_team_actions(team, people, provider):
    client = client_of(people["admin"])
    prefix = f"{BASE}teams/{team.pk}/"
    answer = add(client, team, fake_credentials("openai"), **JSON)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["ok"], body["saved"]) == (True, True)
    key = UserAPIKey.objects.get(pk=body["key"])
    assert key.team == team

    refused = add(client, team, "not a key", **JSON)
    assert refused.status_code == 400
    assert refused.json()["ok"] is False
    assert "api_key" in refused.json()["errors"]

    tested = client.post(f"{prefix}keys/{key.pk}/test/", **JSON).json()
    assert (tested["status"], tested["status_label"]) == ("valid", "Valid")
    removed = client.post(f"{prefix}keys/{key.pk}/remove/", **JSON).json()
    assert removed == {
        "ok": True,
        "level": "success",
        "message": "The key was removed and its secret erased.",
    }


def test_a_duplicate_within_the_team_is_refused_on_the_page(team, people, team_key, secret):
    response = add(client_of(people["owner"]), team, secret)
    assert response.status_code == 400
    assert "You have already stored this key." in html(response)
    assert UserAPIKey.objects.filter(team=team).count() == 1


ACTIONS = [
    ("add page", "get", "add/openai/"),
    ("add", "post", "add/openai/"),
    ("test", "post", "keys/{id}/test/"),
    ("remove page", "get", "keys/{id}/remove/"),
    ("remove", "post", "keys/{id}/remove/"),
]


@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
@pytest.mark.parametrize(("name", "method", "path"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_team_actions_by_role(role, name, method, path, team, people, team_key, secret, provider):
    before = snapshot(team)
    client = client_of(people.get(role))
    url = f"{BASE}teams/{team.pk}/" + path.format(id=team_key.pk)
    data = {"api_key": fake_credentials("openai"), "environment": "test"}
    response = getattr(client, method)(url, data if name == "add" else None)
    content = html(response)
    if role == "anonymous":
        assert response.status_code == 302
        assert "login" in response["Location"]
    elif role in MANAGERS:
        assert response.status_code == (200 if method == "get" else 302)
    else:
        assert response.status_code == 404
        assert snapshot(team) == before
    for json_role in ("member", "outsider"):
        if role == json_role and method == "post":
            answer = getattr(client, method)(url, data if name == "add" else None, **JSON)
            assert answer.status_code == 404
            assert snapshot(team) == before
    assert_no_secret(content, secret, data["api_key"])


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_bad_team_id_in_an_action_is_a_404(bad, people, team_key):
    client = client_of(people["owner"])
    for method, path in [
        ("get", "add/openai/"),
        ("post", f"keys/{team_key.pk}/test/"),
        ("post", f"keys/{team_key.pk}/remove/"),
    ]:
        response = getattr(client, method)(f"{BASE}teams/{bad}/{path}")
        assert response.status_code == 404, (bad, path)
    assert UserAPIKey.objects.get(pk=team_key.pk).deleted_at is None


def test_a_key_is_managed_only_under_its_own_owner(team, people, team_key):
    owner = client_of(people["owner"])
    other_team = TeamFactory(owner=people["owner"])
    theirs = TeamAPIKeyFactory(team=other_team)
    own = UserAPIKeyFactory(user=people["owner"])
    refused = [
        owner.post(f"{BASE}keys/{team_key.pk}/test/"),  # a team's key, as the user's own
        owner.post(f"{BASE}keys/{team_key.pk}/remove/"),
        owner.post(f"{BASE}teams/{team.pk}/keys/{theirs.pk}/remove/"),  # another team's
        owner.post(f"{BASE}teams/{team.pk}/keys/{own.pk}/remove/"),  # the user's own
    ]
    assert [response.status_code for response in refused] == [404] * 4
    assert not UserAPIKey.objects.filter(deleted_at__isnull=False).exists()


def test_an_unknown_service_for_a_team_is_a_404(team, people):
    assert client_of(people["owner"]).get(f"{BASE}teams/{team.pk}/add/nope/").status_code == 404


def test_team_forms_need_a_csrf_token(team, people, team_key):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["owner"])
    prefix = f"{BASE}teams/{team.pk}/"
    refused = [
        client.post(f"{prefix}add/openai/", {"api_key": fake_credentials("openai")}),
        client.post(f"{prefix}keys/{team_key.pk}/test/"),
        client.post(f"{prefix}keys/{team_key.pk}/remove/"),
    ]
    assert [response.status_code for response in refused] == [403] * 3
    assert UserAPIKey.objects.get(pk=team_key.pk).deleted_at is None


def test_get_does_not_test_a_teams_key(team, people, team_key):
    response = client_of(people["owner"]).get(f"{BASE}teams/{team.pk}/keys/{team_key.pk}/test/")
    assert response.status_code == 405


# usage per member ----------------------------------------------------------------------


@pytest.fixture
def calls(team, people, team_key):
    KeyUsageFactory(key=team_key, user=people["member"], calls=3, cost="0.03")
    KeyUsageFactory(key=team_key, user=people["admin"], calls=5, cost="0.5")
    KeyUsageFactory(key=UserAPIKeyFactory(user=people["member"]), calls=100, cost="9")


def member_row(page, user):
    start = page.index(f'data-byok-member="{user.pk}"')
    return page[start : page.index("</tr>", start)]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_every_members_usage_and_the_total(role, team, people, calls):
    page = html(client_of(people[role]).get(f"{BASE}usage/?team={team.pk}&days=7"))
    assert "Per member over the last 7 days" in page
    assert "<td>3</td><td>$0.0300</td>" in member_row(page, people["member"])
    assert "<td>5</td><td>$0.5000</td>" in member_row(page, people["admin"])
    assert "<td>0</td><td>$0.0000</td>" in member_row(page, people["owner"])
    total = page[page.index("data-byok-total") :]
    assert "<td>8</td><td>$0.5300</td>" in total
    assert 'data-byok-service="openai"' in page
    assert f'href="?days=30&amp;team={team.pk}"' in page  # the windows keep the team


def test_a_member_sees_only_their_own_calls(team, people, calls):
    page = html(client_of(people["member"]).get(f"{BASE}usage/?team={team.pk}"))
    assert "Your calls over the last 30 days" in page
    assert "<td>3</td><td>$0.0300</td>" in member_row(page, people["member"])
    assert f'data-byok-member="{people["admin"].pk}"' not in page
    assert str(people["admin"]) not in page
    total = page[page.index("data-byok-total") :]
    assert "<td>3</td><td>$0.0300</td>" in total


def test_someone_who_left_the_team_still_counts_for_its_admins(team, people, calls):
    team.remove_member(people["member"])
    page = html(client_of(people["owner"]).get(f"{BASE}usage/?team={team.pk}"))
    row = member_row(page, people["member"])
    assert "no longer in the team" in row
    assert "<td>3</td>" in row


def test_the_personal_usage_page_lists_the_teams_to_switch_to(team, people, calls):
    page = html(client_of(people["member"]).get(f"{BASE}usage/?days=7"))
    assert f'href="?days=7&amp;team={team.pk}"' in page
    assert 'href="?days=7" aria-current="page">Personal</a>' in page


def test_the_team_usage_page_runs_the_same_queries_for_more_members_and_days(team, people, calls):
    client = client_of(people["owner"])
    url = f"{BASE}usage/?team={team.pk}&days=90"
    few = queries_of(client, url)
    key = TeamAPIKeyFactory(team=team, actor=people["owner"], service="anthropic")
    for n in range(4):
        newcomer = UserFactory()
        team.add_member(newcomer)
        KeyUsageFactory(key=key, user=newcomer, calls=n + 1, cost=Decimal("0.1"))
    many = queries_of(client, url)
    assert few == many


# no secret anywhere --------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_no_team_page_holds_a_secret(role, team, people, team_key, secret, calls, provider):
    client = client_of(people[role])
    prefix = f"{BASE}teams/{team.pk}/"
    pages = [
        client.get(f"{BASE}?team={team.pk}"),
        client.get(f"{BASE}?team={team.pk}&category=ai"),
        client.get(f"{BASE}usage/?team={team.pk}"),
        client.get(f"{prefix}add/openai/"),
        client.get(f"{prefix}keys/{team_key.pk}/remove/"),
        add(client, team, secret),
        add(client, team, secret, **JSON),
        client.post(f"{prefix}keys/{team_key.pk}/test/", **JSON),
    ]
    assert_no_secret("".join(html(page) for page in pages), *secret_values(secret))


def test_a_template_without_the_team_context_keeps_every_control(user):
    """A host's own copy of the dashboard renders byok's includes without the team
    context: a personal key keeps its controls there."""
    from django.template.loader import render_to_string

    key = UserAPIKeyFactory(user=user)
    row = render_to_string("byok/includes/key_row.html", {"key": key})
    assert "Test again" in row
    assert f"{BASE}keys/{key.pk}/remove/" in row
