"""Teams: keys a team owns serve its members, in the order the site sets, at the cost
of one lookup query; only owners and admins manage them; spend is told apart by
member and counted against team budgets."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.core.checks import Error
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path

import byok
from byok import checks, keys, notifications, teams
from byok.exceptions import NoAPIKey
from byok.models import AuditAction, AuditEvent, Budget, KeyUsage, TeamRole, UserAPIKey

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db

PLATFORM_KEY = fake_credentials("openai")


def site(**values):
    return override_settings(BYOK={**settings.BYOK, **values})


@pytest.fixture
def team(user):
    """A team ``user`` owns, with one openai key."""
    team = TeamFactory(owner=user)
    TeamAPIKeyFactory(team=team, actor=user)
    return team


@pytest.fixture
def member(team):
    member = UserFactory()
    team.add_member(member)
    return member


# -- Which key serves ---------------------------------------------------------------


def test_a_member_without_a_key_of_their_own_uses_the_teams(team, member):
    resolved = byok.resolve_api_key(member, "openai", team=team)
    team_key = UserAPIKey.objects.get(team=team)
    assert (resolved.source, resolved.key_id, resolved.team_id) == ("team", team_key.pk, team.pk)
    assert resolved.value == team_key.get_credentials()["api_key"]
    assert resolved.spends == "team"


def test_a_members_own_key_comes_first_unless_the_site_puts_teams_first(team, member):
    own = UserAPIKeyFactory(user=member)
    assert byok.resolve_api_key(member, "openai", team=team).key_id == own.pk
    with site(RESOLUTION_ORDER=["team", "user", "platform"]):
        assert byok.resolve_api_key(member, "openai", team=team).source == "team"


def test_without_a_team_a_member_gets_no_team_key(team, member):
    with pytest.raises(NoAPIKey):
        byok.resolve_api_key(member, "openai")


def test_someone_outside_the_team_never_gets_its_key(team):
    outsider = UserFactory()
    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}):
        assert byok.resolve_api_key(outsider, "openai", team=team).source == "platform"
    with pytest.raises(NoAPIKey):
        byok.resolve_api_key(outsider, "openai", team=team)


def test_a_member_who_leaves_stops_using_the_key_at_once(team, member):
    assert byok.get_user_api_key(member, "openai", team=team)
    team.remove_member(member)
    with pytest.raises(NoAPIKey):
        byok.get_user_api_key(member, "openai", team=team)


def test_the_platform_stands_in_last_and_the_order_can_leave_it_out(team, member, user):
    keys.remove_user_api_key(UserAPIKey.objects.get(team=team), actor=user)
    with site(PLATFORM_KEYS={"openai": PLATFORM_KEY}):
        assert byok.get_user_api_key(member, "openai", team=team) == PLATFORM_KEY
    without_platform = site(
        PLATFORM_KEYS={"openai": PLATFORM_KEY}, RESOLUTION_ORDER=["user", "team"]
    )
    with without_platform, pytest.raises(NoAPIKey):
        byok.get_user_api_key(member, "openai", team=team)


def test_a_team_that_requires_its_key_gets_it_over_a_members_own(team, member, user):
    UserAPIKeyFactory(user=member)
    keys.require_team_key(team, "openai", actor=user)
    assert byok.resolve_api_key(member, "openai", team=team).source == "team"


def test_a_required_key_that_is_missing_serves_nothing_else(team, member, user):
    UserAPIKeyFactory(user=member)
    keys.require_team_key(team, "anthropic", actor=user)
    platform = site(PLATFORM_KEYS={"anthropic": fake_credentials("anthropic")})
    with platform, pytest.raises(NoAPIKey) as refused:
        byok.resolve_api_key(member, "anthropic", team=team)
    assert refused.value.fallback_refused


def test_only_a_manager_requires_a_key(team, member):
    with pytest.raises(PermissionDenied):
        keys.require_team_key(team, "openai", actor=member)


def test_the_lookup_with_a_team_is_one_query(team, member, django_assert_num_queries):
    byok.set_budget(None, team=team, limit="10", action="block")
    byok.set_budget(member, limit="10", action="block")
    with django_assert_num_queries(1):
        resolved = byok.resolve_api_key(member, "openai", team=team)
    assert resolved.source == "team"
    # Whose each budget is: the member's own (no team), the team's (no user).
    assert {(row.user_id, row.team_id) for row in resolved.budgets} == {
        (member.pk, None),
        (None, team.pk),
    }


def test_the_site_picks_the_current_team_from_the_request(team, member, client):
    def view(request):
        return HttpResponse(byok.resolve_api_key(request.user, "openai").source)

    urlpatterns = [path("host/", view)]
    host = override_settings(
        ROOT_URLCONF=type("urls", (), {"urlpatterns": urlpatterns}),
        MIDDLEWARE=[
            *settings.MIDDLEWARE,
            "byok.teams.CurrentRequestMiddleware",
            "test_teams.TeamFromHeader",
        ],
    )
    with site(CURRENT_TEAM=lambda user, request: request and request.byok_team), host:
        client.force_login(member)
        assert client.get("/host/", HTTP_X_TEAM=str(team.pk)).content == b"team"
        with pytest.raises(NoAPIKey):
            client.get("/host/")
    assert teams.current_request() is None


class TeamFromHeader:
    """A host's own middleware: the team the request is for."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.byok_team = request.headers.get("X-Team")
        return self.get_response(request)


# -- Who manages the keys -------------------------------------------------------------


@pytest.mark.parametrize("role", [TeamRole.OWNER, TeamRole.ADMIN])
def test_owners_and_admins_manage_the_teams_keys(team, role, mocked):
    manager = UserFactory()
    team.add_member(manager, role)
    key = TeamAPIKeyFactory(team=team, actor=manager, service="anthropic")
    keys.update_user_api_key(key, nickname="shared", actor=manager)
    assert keys.reveal_user_api_key(key, actor=manager) == key.get_credentials()
    keys.test_user_api_key(key, actor=manager)
    keys.remove_user_api_key(key, actor=manager)
    key.refresh_from_db()
    assert key.deleted_at is not None


@pytest.mark.parametrize("who", ["member", "outsider", "owner of another team"])
def test_members_and_outsiders_cannot_touch_a_teams_key(team, member, who, mocked):
    actor = {"member": member, "outsider": UserFactory(), "owner of another team": None}[who]
    if actor is None:
        actor = UserFactory()
        TeamFactory(owner=actor)
    key = UserAPIKey.objects.get(team=team)
    secret = fake_credentials("anthropic")
    before = (key.nickname, key.credentials, key.status, key.deleted_at)
    operations = [
        lambda: keys.add_team_api_key(team, "anthropic", secret, actor=actor),
        lambda: keys.update_user_api_key(key, nickname="mine", actor=actor),
        lambda: keys.reveal_user_api_key(key, actor=actor),
        lambda: keys.test_user_api_key(key, actor=actor),
        lambda: keys.remove_user_api_key(key, actor=actor),
    ]
    for operation in operations:
        with pytest.raises(PermissionDenied):
            operation()
    key.refresh_from_db()
    assert (key.nickname, key.credentials, key.status, key.deleted_at) == before
    assert UserAPIKey.objects.filter(team=team).count() == 1
    assert not AuditEvent.objects.filter(action=AuditAction.REVEALED).exists()


def test_a_team_stores_a_secret_once_and_another_team_may_store_it_too(team, user):
    secret = fake_credentials("anthropic")
    keys.add_team_api_key(team, "anthropic", secret, actor=user)
    with pytest.raises(ValidationError):
        keys.add_team_api_key(team, "anthropic", secret, actor=user)
    other = TeamFactory(owner=user)
    keys.add_team_api_key(other, "anthropic", secret, actor=user)
    assert UserAPIKey.objects.filter(service="anthropic").count() == 2


def test_a_key_belongs_to_a_user_or_a_team_never_both(team, user):
    key = UserAPIKey.objects.get(team=team)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserAPIKey.objects.filter(pk=key.pk).update(user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserAPIKey.objects.filter(pk=key.pk).update(team=None)


def test_the_teams_trail_holds_its_keys_events(team, user):
    events = AuditEvent.objects.for_team(team)
    assert [(e.action, e.actor_id, e.owner_id) for e in events] == [
        (AuditAction.CREATED, user.pk, None)
    ]


def test_deleting_a_team_deletes_its_keys(team):
    team.delete()
    assert not UserAPIKey.objects.exists()


def test_roles_come_from_the_adapter(team, member, user):
    assert teams.role_of(user, team) == TeamRole.OWNER
    assert teams.role_of(member, team) == TeamRole.MEMBER
    assert teams.role_of(UserFactory(), team) is None
    assert teams.adapter().teams_of(member) == [(team, TeamRole.MEMBER)]
    assert dict(teams.adapter().members_of(team)) == {
        user: TeamRole.OWNER,
        member: TeamRole.MEMBER,
    }
    with pytest.raises(ValueError, match="Unknown role 'boss'"):
        team.add_member(member, "boss")


# -- Usage and budgets ----------------------------------------------------------------


def test_usage_of_a_teams_key_is_told_apart_by_member(team, member, user):
    other = UserFactory()
    team.add_member(other)
    for caller, calls in ((member, 2), (other, 3)):
        served = byok.resolve_api_key(caller, "openai", team=team)
        byok.track_api_usage(caller, "openai", calls=calls, cost="0.01", key=served)
    key = UserAPIKey.objects.get(team=team)
    assert dict(KeyUsage.objects.filter(key=key).values_list("user", "calls")) == {
        member.pk: 2,
        other.pk: 3,
    }
    key.refresh_from_db()
    assert key.usage_count == 5


def test_a_team_budget_stops_every_member_on_the_teams_key_only(team, member):
    byok.set_budget(None, team=team, limit="0.10", service="openai", action="block")
    other = UserFactory()
    team.add_member(other)
    for caller in (member, other):
        served = byok.resolve_api_key(caller, "openai", team=team)
        byok.track_api_usage(caller, "openai", cost="0.05", key=served)
    for caller in (member, other):
        with pytest.raises(byok.BudgetExceeded):
            byok.resolve_api_key(caller, "openai", team=team)
    own = UserAPIKeyFactory(user=member)
    assert byok.resolve_api_key(member, "openai", team=team).key_id == own.pk
    budget = Budget.objects.get(team=team)
    assert (budget.user_id, budget.applies_to, budget.spent) == (None, "team", Decimal("0.1"))
    blocked = AuditEvent.objects.filter(action=AuditAction.BUDGET_BLOCKED)
    assert [(e.owner_id, e.team_id) for e in blocked] == [(member.pk, team.pk)]


def test_usage_recorded_against_a_team_key_row_counts_against_the_teams_budget(team, member):
    budget = byok.set_budget(None, team=team, limit="1", service="openai")
    team_key = UserAPIKey.objects.get(team=team)
    byok.track_api_usage(member, "openai", cost="0.25", key=team_key)
    budget.refresh_from_db()
    assert budget.spent == Decimal("0.25")
    assert KeyUsage.objects.get(key=team_key, user=member).cost == Decimal("0.25")


def test_a_members_budget_on_the_teams_key_stops_that_member_alone(team, member):
    byok.set_budget(member, team=team, limit="0.05", service="openai", action="block")
    other = UserFactory()
    team.add_member(other)
    served = byok.resolve_api_key(member, "openai", team=team)
    byok.track_api_usage(member, "openai", cost="0.05", key=served)
    with pytest.raises(byok.BudgetExceeded):
        byok.resolve_api_key(member, "openai", team=team)
    assert byok.resolve_api_key(other, "openai", team=team).source == "team"


def test_a_reservation_for_a_team_counts_against_its_budget(team, member):
    byok.set_budget(None, team=team, limit="0.10", service="openai", action="block")
    with byok.reserve(member, "openai", "0.08", team=team) as resolved:
        assert resolved.source == "team"
        with pytest.raises(byok.BudgetExceeded):
            byok.reserve(member, "openai", "0.08", team=team).__enter__()
        byok.track_api_usage(member, "openai", cost="0.06", key=resolved)
    assert Budget.objects.get(team=team).spent == Decimal("0.06")


def test_a_budget_belongs_to_someone():
    with pytest.raises(ValueError, match="belongs to a user, a team"):
        byok.set_budget(None, limit="1")


# -- Settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order", [[], ["user", "user"], ["user", "teams"], "user", [None], ["platform", 1]]
)
def test_a_bad_resolution_order_is_reported(order):
    with site(RESOLUTION_ORDER=order):
        assert [m.id for m in checks.check_settings()] == ["byok.E019"]


@pytest.mark.parametrize(
    "values",
    [
        {"TEAM_ADAPTER": "nowhere.Adapter"},
        {"TEAM_ADAPTER": "byok.models.Team"},
        {"CURRENT_TEAM": "nowhere.current_team"},
        {"CURRENT_TEAM": 42},
    ],
)
def test_a_bad_team_setting_is_reported(values):
    with site(**values):
        messages = checks.check_settings()
    assert [m.id for m in messages] == ["byok.E020"]
    assert all(isinstance(m, Error) for m in messages)


def test_a_teams_key_that_stops_working_is_told_to_its_owners_and_admins(team, member, user):
    admin = UserFactory()
    team.add_member(admin, TeamRole.ADMIN)
    key = UserAPIKey.objects.get(team=team)
    key.status = "invalid"
    told = notifications.key_turned_invalid(key, old_status="active")
    assert {notification.user_id for notification in told} == {user.pk, admin.pk}


def test_usage_recorded_without_the_key_goes_to_the_key_the_lookup_would_choose(team, member):
    """Host code that calls track_api_usage(user, service) after get_user_api_key()
    charges the team's key when the current team's key served."""
    with site(CURRENT_TEAM=lambda user, request: team):
        assert byok.resolve_api_key(member, "openai").source == "team"
        byok.track_api_usage(member, "openai", cost="0.02")
    usage = KeyUsage.objects.get()
    assert (usage.key.team_id, usage.user_id, usage.cost) == (team.pk, member.pk, Decimal("0.02"))
