"""The team routes at work: teams and roles, members, per-member usage, team keys."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from byok.fields import SealedCredentials
from byok.models import AuditAction, AuditEvent, TeamRole, UserAPIKey

from factories import (
    KeyUsageFactory,
    TeamAPIKeyFactory,
    TeamFactory,
    UserAPIKeyFactory,
    UserFactory,
)
from fakes import FAKES, fake_credentials
from support import client_for

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/teams/"


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def member():
    return UserFactory()


@pytest.fixture
def team(owner, member):
    team = TeamFactory(name="Acme", owner=owner)
    team.add_member(member, TeamRole.MEMBER)
    return team


def test_teams_lists_each_team_with_the_callers_role(owner, team):
    other = TeamFactory(name="Beta")
    other.add_member(owner, TeamRole.ADMIN)
    TeamFactory(name="Not mine")
    body = client_for(owner).get(BASE).json()
    assert body == [
        {"id": str(team.pk), "name": "Acme", "role": "owner", "can_manage": True},
        {"id": str(other.pk), "name": "Beta", "role": "admin", "can_manage": True},
    ]
    one = client_for(owner).get(f"{BASE}{team.pk}/").json()
    assert one == body[0]


def test_a_member_reads_the_team_and_its_members_but_manages_nothing(owner, member, team):
    client = client_for(member)
    assert client.get(f"{BASE}{team.pk}/").json()["can_manage"] is False
    members = client.get(f"{BASE}{team.pk}/members/").json()
    assert sorted((row["id"], row["username"], row["role"]) for row in members) == sorted(
        [
            (str(owner.pk), owner.get_username(), "owner"),
            (str(member.pk), member.get_username(), "member"),
        ]
    )


def test_the_team_list_costs_the_same_queries_for_one_team_or_many(owner):
    TeamFactory(owner=owner)
    with CaptureQueriesContext(connection) as one:
        client_for(owner).get(BASE)
    for _ in range(5):
        TeamFactory(owner=owner)
    with CaptureQueriesContext(connection) as six:
        assert len(client_for(owner).get(BASE).json()) == 6
    assert len(one) == len(six)


def test_an_admin_adds_a_team_key_owned_by_the_team(owner, member, team):
    admin = UserFactory()
    team.add_member(admin, TeamRole.ADMIN)
    secret = fake_credentials("openai")
    response = client_for(admin).post(
        f"{BASE}{team.pk}/keys/",
        {"service": "openai", "key": secret, "test": False, "nickname": "shared"},
        format="json",
    )
    assert response.status_code == 201, response.content
    key = UserAPIKey.objects.get(pk=response.json()["id"])
    assert (key.team_id, key.user_id, key.nickname) == (team.pk, None, "shared")
    assert key.get_secret() == secret
    created = AuditEvent.objects.get(key=key, action=AuditAction.CREATED)
    assert (created.actor_id, created.team_id) == (admin.pk, team.pk)
    assert secret not in response.content.decode()
    # The member sees it, masked and serving the team (its default).
    listed = client_for(member).get(f"{BASE}{team.pk}/keys/").json()
    assert [(row["id"], row["is_default"]) for row in listed] == [(str(key.pk), True)]
    assert listed[0]["masked_key"] == key.masked_key


def test_the_same_secret_twice_in_a_team_is_a_400_and_stores_nothing(owner, team):
    secret = fake_credentials("openai")
    url = f"{BASE}{team.pk}/keys/"
    body = {"service": "openai", "key": secret, "test": False}
    assert client_for(owner).post(url, body, format="json").status_code == 201
    again = client_for(owner).post(url, body, format="json")
    assert again.status_code == 400
    assert again.json()["credentials"][0]["code"] == "duplicate"
    assert UserAPIKey.objects.filter(team=team).count() == 1


def test_the_team_key_list_is_the_teams_keys_alone(owner, team):
    key = TeamAPIKeyFactory(team=team, actor=owner)
    UserAPIKeyFactory(user=owner)
    TeamAPIKeyFactory()
    listed = client_for(owner).get(f"{BASE}{team.pk}/keys/").json()
    assert [row["id"] for row in listed] == [str(key.pk)]
    mine = client_for(owner).get("/api/user/api-keys/").json()
    assert str(key.pk) not in [row["id"] for row in mine]


def test_the_team_key_list_runs_the_same_queries_for_1_and_12_keys_and_decrypts_nothing(
    owner, member, team, monkeypatch
):
    services = list(FAKES)
    TeamAPIKeyFactory(team=team, actor=owner, service=services[0])
    url = f"{BASE}{team.pk}/keys/"
    with CaptureQueriesContext(connection) as one:
        assert client_for(member).get(url).status_code == 200
    for service in services[1:]:
        TeamAPIKeyFactory(team=team, actor=owner, service=service)

    def no_decryption(*args, **kwargs):
        raise AssertionError("the list decrypted a key")

    monkeypatch.setattr(SealedCredentials, "open", no_decryption)
    with CaptureQueriesContext(connection) as twelve:
        assert len(client_for(member).get(url).json()) == 12
    assert len(one) == len(twelve)


def test_filters_work_on_team_keys(owner, team):
    TeamAPIKeyFactory(team=team, actor=owner, service="openai")
    TeamAPIKeyFactory(team=team, actor=owner, service="stripe", environment="test")
    url = f"{BASE}{team.pk}/keys/?environment=test"
    assert [row["service"] for row in client_for(owner).get(url).json()] == ["stripe"]


def test_a_reveal_is_for_managers_and_audited(owner, member, team):
    key = TeamAPIKeyFactory(team=team, actor=owner)
    url = f"{BASE}{team.pk}/keys/{key.pk}/reveal/"
    assert client_for(member).post(url).status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.REVEALED).exists()
    response = client_for(owner).post(url)
    assert response.json()["key"] == key.get_secret()
    assert response["Cache-Control"] == "no-store"
    revealed = AuditEvent.objects.get(action=AuditAction.REVEALED)
    assert (revealed.actor_id, revealed.team_id, revealed.key_id) == (owner.pk, team.pk, key.pk)


def test_an_owner_switches_off_and_deletes_a_team_key(owner, team):
    key = TeamAPIKeyFactory(team=team, actor=owner)
    url = f"{BASE}{team.pk}/keys/{key.pk}/"
    client = client_for(owner)
    assert client.patch(url, {"is_active": False}, format="json").json()["is_active"] is False
    assert client.delete(url).status_code == 204
    key.refresh_from_db()
    assert key.is_deleted
    assert key.credentials is None
    assert client.get(url).status_code == 404


def test_a_retest_by_an_admin_records_the_result(owner, team, provider):
    key = TeamAPIKeyFactory(team=team, actor=owner)
    response = client_for(owner).post(f"{BASE}{team.pk}/keys/{key.pk}/test/")
    assert response.status_code == 200
    assert response.json()["test"]["status"] == "valid"
    key.refresh_from_db()
    assert key.status == "valid"


def test_user_wide_routes_are_not_under_a_team(owner, team):
    for path in ("test/", "import/", "services/", "stats/"):
        response = client_for(owner).get(f"{BASE}{team.pk}/keys/{path}")
        # Read as a key id that is not a UUID: no such key, not another endpoint.
        assert response.status_code == 404, path


class TestUsage:
    @pytest.fixture
    def usage(self, owner, member, team):
        key = TeamAPIKeyFactory(team=team, actor=owner)
        today = timezone.localdate()
        KeyUsageFactory(key=key, user=member, calls=3, cost=Decimal("0.3"))
        KeyUsageFactory(key=key, user=owner, calls=5, cost=Decimal("0.5"))
        KeyUsageFactory(key=key, user=owner, calls=7, date=today - timedelta(days=40))
        # Another team's key, and the owner's own key: not the team's usage.
        KeyUsageFactory(key=TeamAPIKeyFactory(), user=member, calls=11)
        KeyUsageFactory(key=UserAPIKeyFactory(user=owner), calls=13)
        return today

    def rows(self, user, team, query=""):
        response = client_for(user).get(f"{BASE}{team.pk}/usage/{query}")
        assert response.status_code == 200, response.content
        return [(row["user"], row["calls"], row["cost"]) for row in response.json()["rows"]]

    def test_an_owner_sees_every_members_usage(self, owner, member, team, usage):
        assert sorted(self.rows(owner, team)) == sorted(
            [(str(member.pk), 3, "0.300000"), (str(owner.pk), 5, "0.500000")]
        )
        assert len(self.rows(owner, team, "?days=60")) == 3

    def test_a_member_sees_their_own(self, owner, member, team, usage):
        assert self.rows(member, team) == [(str(member.pk), 3, "0.300000")]

    def test_a_bad_window_is_a_400(self, owner, team, usage):
        response = client_for(owner).get(f"{BASE}{team.pk}/usage/?days=0")
        assert response.status_code == 400


def test_a_members_refused_calls_spend_no_throttle_budget(owner, member, team, provider):
    """The role is checked before the throttles: a member's refused retest or reveal
    leaves the budgets whole (the budget is per user)."""
    key = TeamAPIKeyFactory(team=team, actor=owner)
    rates = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"byok_test": "1/minute", "byok_reveal": "1/minute"},
    }
    url = f"{BASE}{team.pk}/keys/{key.pk}/"
    with override_settings(REST_FRAMEWORK=rates):
        client = client_for(member)
        assert [client.post(url + "test/").status_code for _ in range(3)] == [403] * 3
        assert [client.post(url + "reveal/").status_code for _ in range(3)] == [404] * 3
        # Their own key's test still has its one call this minute.
        own = UserAPIKeyFactory(user=member)
        assert client.post(f"/api/user/api-keys/{own.pk}/test/").status_code == 200
        assert client.post(f"/api/user/api-keys/{own.pk}/test/").status_code == 429


class TestStats:
    """``stats/`` and ``services/`` count your own keys (and, for calls, the platform's);
    a team's figures are at ``teams/{team_pk}/stats/``, as the dashboard shows them."""

    @pytest.fixture
    def usage(self, owner, member, team):
        key = TeamAPIKeyFactory(team=team, actor=owner, service="anthropic")
        KeyUsageFactory(key=key, user=member, calls=3, cost=Decimal("0.3"))
        KeyUsageFactory(key=key, user=owner, calls=5, cost=Decimal("0.5"))
        KeyUsageFactory(key=UserAPIKeyFactory(user=member), calls=13, cost=Decimal("1"))

    def test_an_owner_sees_the_teams_month(self, owner, team, usage):
        body = client_for(owner).get(f"{BASE}{team.pk}/stats/").json()
        assert body["connected_services"] == 1
        assert (body["total_api_calls"], body["estimated_monthly_cost"]) == (8, "0.800000")

    def test_a_member_sees_their_own_calls_on_the_teams_keys(self, member, team, usage):
        body = client_for(member).get(f"{BASE}{team.pk}/stats/").json()
        assert body["connected_services"] == 1
        assert (body["total_api_calls"], body["estimated_monthly_cost"]) == (3, "0.300000")

    def test_your_own_figures_leave_the_teams_keys_out(self, member, team, usage):
        api = client_for(member)
        stats = api.get("/api/user/api-keys/stats/").json()
        assert stats["connected_services"] == 1  # their own openai key
        assert (stats["total_api_calls"], stats["estimated_monthly_cost"]) == (13, "1.000000")
        services = {row["id"]: row for row in api.get("/api/user/api-keys/services/").json()}
        assert (services["openai"]["connected"], services["openai"]["key_count"]) == (True, 1)
        assert (services["anthropic"]["connected"], services["anthropic"]["key_count"]) == (
            False,
            0,
        )

    def test_the_dashboard_shows_the_same_figures(self, owner, member, team, usage):
        from django.test import Client

        for user in (owner, member):
            client = Client()
            client.force_login(user)
            api = client_for(user)
            for page_url, api_url in (
                ("/dashboard/api-keys/", "/api/user/api-keys/stats/"),
                (f"/dashboard/api-keys/?team={team.pk}", f"{BASE}{team.pk}/stats/"),
            ):
                page = client.get(page_url).content.decode()
                body = api.get(api_url).json()
                calls = f'data-byok-stat="calls">{body["total_api_calls"]}<'
                connected = f">{body['connected_services']} / 12<"
                assert calls in page, (user, page_url)
                assert connected in page, (user, page_url)
