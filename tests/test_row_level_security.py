"""PostgreSQL row-level security (``BYOK["POSTGRES_ROW_LEVEL_SECURITY"]``), proved with
raw SQL run as a role the policies hold: not the suite's ``postgres``, a superuser,
whom row-level security never restricts.

Each test runs in the test's transaction, so the policies, the role and its grants
are rolled back with it.
"""

import hashlib
import os
import re
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.models import Q
from django.http import JsonResponse
from django.test import AsyncClient, Client
from django.urls import include, path
from django.utils import timezone

import byok
from byok import rls
from byok.exceptions import NoAPIKey
from byok.models import (
    AuditEvent,
    Budget,
    KeyUsage,
    Notification,
    NotificationKind,
    NotificationOptOut,
    PlatformUsage,
    Reservation,
    ServicePreference,
    Team,
    TeamMembership,
    UserAPIKey,
)
from byok.rls_policies import protected_tables
from byok.tasks import send_notification

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory, UserFactory
from fakes import fake_credentials
from support import OTHER_ENCRYPTION_KEY, client_for, run_in_test_project

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level security is PostgreSQL's"
)
pytestmark = pytest.mark.django_db

#: A role of our own (roles are the server's, shared by parallel test databases).
ROLE = "byok_rls_" + re.sub(r"\W", "_", os.environ.get("TOX_ENV_NAME", "local")).lower()
MIDDLEWARE = "byok.middleware.RowLevelSecurityMiddleware"
KEYS = settings.BYOK["ENCRYPTION_KEYS"]


# -- Views a host would have, reading byok's tables with plain SQL --------------------


def visible_rows():
    """Table name to the ids of its rows this connection can read, by plain SQL."""
    found = {}
    with connection.cursor() as cursor:
        for table in protected_tables():
            cursor.execute(f"SELECT id FROM {connection.ops.quote_name(table)}")  # noqa: S608
            found[table] = sorted(str(row[0]) for row in cursor.fetchall())
    return found


def rows_view(request):
    return JsonResponse(visible_rows())


async def async_rows_view(request):
    return JsonResponse(await sync_to_async(visible_rows)())


def lookup_view(request):
    team = Team.objects.filter(pk=request.GET.get("team")).first()
    try:
        secret = byok.get_user_api_key(request.user, request.GET["service"], team=team)
    except NoAPIKey:
        secret = None
    digest = None if secret is None else hashlib.sha256(secret.encode()).hexdigest()
    return JsonResponse({"digest": digest})


def usage_view(request):
    byok.track_api_usage(request.user, "openai", cost="0.5")
    return JsonResponse({"ok": True})


def failing_view(request):
    raise RuntimeError("the view failed")


urlpatterns = [
    path("rls/rows/", rows_view),
    path("rls/async-rows/", async_rows_view),
    path("rls/lookup/", lookup_view),
    path("rls/usage/", usage_view),
    path("rls/fail/", failing_view),
    path("", include("urls")),
]


# -- Fixtures ---------------------------------------------------------------------------


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


@pytest.fixture
def rls_on(settings):
    settings.BYOK = {**settings.BYOK, "POSTGRES_ROW_LEVEL_SECURITY": True}
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    settings.ROOT_URLCONF = __name__


def enable():
    """``byok_row_level_security enable`` inside the test's transaction, whose deferred
    foreign key checks must run first (PostgreSQL alters no table with some pending)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("byok_row_level_security", "enable", stdout=StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def protected(rls_on):
    """byok's tables under row-level security, and a role the policies hold."""
    enable()
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")


@pytest.fixture
def as_role(protected):
    """The connection runs as the restricted role (as a site's would)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {ROLE}")
    yield
    rls.leave(rls.NOBODY)
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")


@pytest.fixture
def world(db):
    """Two users with a row of their own in each of byok's tables; a team of each (A's
    has a second member), each with a key; written as the superuser."""
    a, b, a_teammate = UserFactory(), UserFactory(), UserFactory()
    team_a, team_b = TeamFactory(owner=a), TeamFactory(owner=b)
    team_a.add_member(a_teammate)
    secrets = {}
    for user in (a, b):
        key = UserAPIKeyFactory(user=user, service="openai")
        secrets[user.pk] = key.get_secret()
        KeyUsage.objects.create(key=key, user=user, date=timezone.localdate())
        PlatformUsage.objects.create(
            user=user, service="anthropic", environment="production", date=timezone.localdate()
        )
        budget = Budget.objects.create(user=user, limit=10)
        Reservation.objects.create(
            budget=budget, amount=1, expires_at=timezone.now() + timedelta(hours=1)
        )
        Notification.objects.create(user=user, kind=NotificationKind.KEY_INVALID, occasion="x")
        NotificationOptOut.objects.create(user=user, kind=NotificationKind.KEY_UNUSED)
    for team, owner in ((team_a, a), (team_b, b)):
        key = TeamAPIKeyFactory(team=team, service="anthropic", actor=owner)
        secrets[team.pk] = key.get_secret()
        Budget.objects.create(team=team, limit=20)
        KeyUsage.objects.create(key=key, user=owner, date=timezone.localdate())
    # The teammate's own usage of the team's key: A sees it (the team's key), B not.
    KeyUsage.objects.create(
        key=UserAPIKey.objects.get(team=team_a), user=a_teammate, date=timezone.localdate()
    )
    return {"a": a, "b": b, "team_a": team_a, "team_b": team_b, "secrets": secrets}


def everything():
    with rls.bypass():
        return visible_rows()


def expected_for(user):
    """Each table's ids a session of ``user`` may read, chosen with the ORM (under the
    bypass, or as the superuser: every row)."""
    with rls.bypass():
        return _expected_for(user)


def _expected_for(user):
    teams = list(TeamMembership.objects.filter(user=user).values_list("team", flat=True))
    owned = Q(user=user) | Q(team__in=teams)
    keys = UserAPIKey.objects.filter(owned)
    budgets = Budget.objects.filter(owned)
    querysets = {
        UserAPIKey: keys,
        ServicePreference: ServicePreference.objects.filter(owned),
        Budget: budgets,
        KeyUsage: KeyUsage.objects.filter(Q(user=user) | Q(key__in=keys)),
        PlatformUsage: PlatformUsage.objects.filter(user=user),
        Reservation: Reservation.objects.filter(budget__in=budgets),
        AuditEvent: AuditEvent.objects.filter(Q(owner=user) | Q(actor=user) | Q(team__in=teams)),
        Notification: Notification.objects.filter(user=user),
        NotificationOptOut: NotificationOptOut.objects.filter(user=user),
        TeamMembership: TeamMembership.objects.filter(owned),
        Team: Team.objects.filter(pk__in=teams),
    }
    return {
        model._meta.db_table: sorted(str(pk) for pk in queryset.values_list("pk", flat=True))
        for model, queryset in querysets.items()
    }


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


# -- What a request reads ---------------------------------------------------------------


@on_postgresql
def test_a_request_reads_only_its_users_rows_and_their_teams(world, as_role):
    visible = signed_in(world["a"]).get("/rls/rows/").json()
    assert visible == expected_for(world["a"])
    for table, ids in everything().items():
        # Each table has rows A must not see (B's, B's team's), and A sees some.
        assert set(visible[table]) < set(ids), table
        assert visible[table], table


@on_postgresql
def test_with_no_user_set_no_row_is_visible(world, as_role):
    assert all(ids == [] for ids in visible_rows().values())
    assert all(ids == [] for ids in Client().get("/rls/rows/").json().values())  # anonymous


@on_postgresql
def test_another_users_key_is_invisible_to_plain_sql(world, as_role):
    with rls.bypass():
        b_key_id = UserAPIKey.objects.get(user=world["b"]).pk
    with rls.acting_for(world["a"]), connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM byok_userapikey WHERE id = %s", [b_key_id])
        assert cursor.fetchall() == []
        cursor.execute("UPDATE byok_userapikey SET nickname = 'mine' WHERE id = %s", [b_key_id])
        assert cursor.rowcount == 0
        assert not UserAPIKey.objects.filter(pk=b_key_id).exists()


@on_postgresql
def test_team_rows_are_visible_to_members_only(world, as_role):
    team_a, team_b = world["team_a"], world["team_b"]
    with rls.acting_for(world["a"]):
        team_keys = UserAPIKey.objects.filter(team__isnull=False)
        assert set(team_keys.values_list("team", flat=True)) == {team_a.pk}
        assert list(Team.objects.values_list("pk", flat=True)) == [team_a.pk]
        assert not TeamMembership.objects.filter(team=team_b).exists()
    with rls.acting_for(world["b"]):
        assert list(Team.objects.values_list("pk", flat=True)) == [team_b.pk]


@on_postgresql
def test_the_bypass_sees_every_row(world, as_role):
    with rls.acting_for(world["a"]):
        with rls.bypass():
            assert visible_rows() == everything()
        assert visible_rows() == expected_for(world["a"])  # the user's scope is back
    assert all(ids == [] for ids in visible_rows().values())


@on_postgresql
def test_the_lookup_works_through_the_middleware_as_the_role(world, as_role):
    a, team_a, team_b = world["a"], world["team_a"], world["team_b"]
    client = signed_in(a)
    own = client.get("/rls/lookup/", {"service": "openai"}).json()
    assert own == {"digest": digest(world["secrets"][a.pk])}
    team = client.get("/rls/lookup/", {"service": "anthropic", "team": team_a.pk}).json()
    assert team == {"digest": digest(world["secrets"][team_a.pk])}
    # Not a member of B's team (and its row is not even visible to look it up by).
    assert client.get("/rls/lookup/", {"service": "anthropic", "team": team_b.pk}).json() == {
        "digest": None
    }


@on_postgresql
def test_a_user_adds_uses_and_lists_keys_under_the_policies(world, as_role, provider):
    a = world["a"]
    api = client_for(a)
    body = {"service": "anthropic", "key": fake_credentials("anthropic"), "test": False}
    assert api.post("/api/user/api-keys/", body).status_code == 201
    listed = api.get("/api/user/api-keys/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    with rls.bypass():
        mine = {str(pk) for pk in UserAPIKey.objects.filter(user=a).values_list("pk", flat=True)}
    assert {row["id"] for row in rows} >= mine
    assert len(mine) == 2
    assert signed_in(a).get("/rls/usage/").status_code == 200
    with rls.acting_for(a):
        assert KeyUsage.objects.filter(user=a, key__service="openai").get().calls == 1


@on_postgresql
def test_the_dashboard_shows_the_users_keys_only(world, as_role):
    with rls.bypass():
        mine = UserAPIKey.objects.get(user=world["a"]).masked_key
        theirs = UserAPIKey.objects.get(user=world["b"]).masked_key
    page = signed_in(world["a"]).get("/dashboard/api-keys/")
    assert page.status_code == 200
    assert mine in page.content.decode()
    assert theirs not in page.content.decode()


@on_postgresql
def test_the_variables_are_cleared_after_the_request_even_when_the_view_raises(world, as_role):
    client = Client(raise_request_exception=False)
    client.force_login(world["a"])
    assert client.get("/rls/fail/").status_code == 500
    with connection.cursor() as cursor:  # the same connection, as CONN_MAX_AGE keeps it
        cursor.execute(
            "SELECT current_setting('byok.user_id', true), "
            "current_setting('byok.rls_bypass', true)"
        )
        assert cursor.fetchone() == ("", "off")
    assert all(ids == [] for ids in visible_rows().values())
    assert rls.current() == rls.NOBODY


@on_postgresql
def test_an_async_view_reads_only_its_users_rows(world, as_role):
    client = AsyncClient()
    client.force_login(world["a"])
    response = async_to_sync(client.get)("/rls/async-rows/")
    assert response.json() == expected_for(world["a"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('byok.user_id', true)")
        assert cursor.fetchone() == ("",)


@on_postgresql
def test_staff_see_every_row_in_the_admin(world, as_role):
    staff = UserFactory(is_staff=True, is_superuser=True)
    response = signed_in(staff).get("/admin/byok/userapikey/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == len(everything()["byok_userapikey"])
    # Not on their own pages: there they are a user like any other.
    assert all(ids == [] for ids in signed_in(staff).get("/rls/rows/").json().values())


@on_postgresql
def test_byok_commands_run_under_the_bypass(world, as_role, settings):
    settings.BYOK = {**settings.BYOK, "ENCRYPTION_KEYS": [OTHER_ENCRYPTION_KEY, *KEYS]}
    out = StringIO()
    call_command("byok_rotate_keys", "--dry-run", stdout=out)
    assert f"Dry run: {len(everything()['byok_userapikey'])} rows would be" in out.getvalue()
    assert rls.current() == rls.NOBODY


@on_postgresql
def test_a_task_runs_under_the_bypass(world, as_role):
    with rls.bypass():
        notification = Notification.objects.get(user=world["b"])
    with rls.acting_for(world["a"]):  # a task run at once, inside A's request
        assert send_notification.call(notification.pk) is True


@on_postgresql
def test_a_connection_opened_inside_a_scope_starts_in_it(world, rls_on):
    fresh = connections.create_connection("default")
    try:
        # The cursor connects: connection_created sets the scope on the new session.
        with rls.acting_for(world["a"]), fresh.cursor() as cursor:
            cursor.execute("SELECT current_setting('byok.user_id', true)")
            assert cursor.fetchone() == (str(world["a"].pk),)
    finally:
        fresh.close()


# -- With the setting off -----------------------------------------------------------------


def test_off_the_helpers_send_no_sql(world, django_assert_num_queries):
    with django_assert_num_queries(0), rls.bypass(), rls.acting_for(world["a"]):
        assert rls.current() == rls.NOBODY


def test_off_the_middleware_sends_no_sql(world, settings, django_assert_num_queries):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    settings.ROOT_URLCONF = __name__
    client = signed_in(world["a"])
    with django_assert_num_queries(len(protected_tables())):  # the view's, no more
        client.get("/rls/rows/")


# -- The command ---------------------------------------------------------------------------


@on_postgresql
def test_status_reports_each_table(rls_on):
    out = StringIO()
    call_command("byok_row_level_security", "status", stdout=out)
    assert "is on" in out.getvalue()
    not_yet = "byok_userapikey: not protected (not enabled, not forced, not byok's policy)"
    assert not_yet in out.getvalue()
    call_command("byok_row_level_security", "enable", stdout=StringIO())
    out = StringIO()
    call_command("byok_row_level_security", "status", stdout=out)
    assert out.getvalue().count(": protected") == len(protected_tables())
    assert "bypasses row-level security" in out.getvalue()  # the suite's superuser
    call_command("byok_row_level_security", "disable", stdout=StringIO())
    out = StringIO()
    call_command("byok_row_level_security", "status", stdout=out)
    assert ": protected" not in out.getvalue()


@on_postgresql
def test_enable_needs_the_setting_and_sql_prints_the_statements(db):
    with pytest.raises(CommandError, match="POSTGRES_ROW_LEVEL_SECURITY"):
        call_command("byok_row_level_security", "enable", stdout=StringIO())
    out = StringIO()
    call_command("byok_row_level_security", "enable", "--sql", stdout=out)
    assert 'ALTER TABLE "byok_userapikey" FORCE ROW LEVEL SECURITY;' in out.getvalue()
    assert 'CREATE POLICY byok_rls ON "byok_team"' in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT relrowsecurity FROM pg_class WHERE relname = 'byok_userapikey'")
        assert cursor.fetchone() == (False,)  # printed, not run


def test_the_command_refuses_other_databases(db):
    if connection.vendor == "postgresql":
        pytest.skip("the refusal is for other databases")
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command("byok_row_level_security", "status")


# -- The checks ----------------------------------------------------------------------------


def check_ids(databases=None):
    messages = run_checks(databases=databases)
    return [message.id for message in messages if message.id.startswith("byok.")]


def test_e030_the_setting_on_another_database(rls_on):
    assert ("byok.E030" in check_ids()) == (connection.vendor != "postgresql")


def test_e032_the_setting_without_the_middleware(rls_on, settings):
    assert "byok.E032" not in check_ids()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    assert "byok.E032" in check_ids()


def test_no_check_queries_the_database_with_the_setting_off(db):
    assert not {"byok.E030", "byok.E031", "byok.E032", "byok.W005"} & set(check_ids(["default"]))


@on_postgresql
def test_e031_a_superuser(rls_on):
    enable()
    messages = [m for m in run_checks(databases=["default"]) if m.id == "byok.E031"]
    assert len(messages) == 1
    assert "a superuser" in messages[0].msg


@on_postgresql
def test_e031_the_tables_owner_without_force_and_w005(protected):
    assert not {"byok.E031", "byok.W005"} & set(_checks_as_role())
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE byok_budget OWNER TO {ROLE}")
        cursor.execute("ALTER TABLE byok_budget NO FORCE ROW LEVEL SECURITY")
    messages = _checks_as_role()
    assert messages.count("byok.E031") == 1
    call_command("byok_row_level_security", "disable", stdout=StringIO())
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE byok_budget OWNER TO CURRENT_USER")
    assert "byok.W005" in _checks_as_role()


def _checks_as_role():
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {ROLE}")
    try:
        return check_ids(["default"])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


# -- A host's own team model -------------------------------------------------------------

HOST_TEAMS = """
import django
django.setup()
from io import StringIO

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import override_settings

from byok import rls
from byok.models import UserAPIKey
from byok.rls_policies import protected_tables
from factories import TeamAPIKeyFactory, UserFactory
from organizations.models import Organization, Seat

role = "__role__"
connection.creation.create_test_db(verbosity=0)
on = override_settings(BYOK={**settings.BYOK, "POSTGRES_ROW_LEVEL_SECURITY": True})
on.enable()
try:
    acme = Organization.objects.create(slug="acme")
    admin, member, outsider = UserFactory(), UserFactory(), UserFactory()
    Seat.objects.create(organization=acme, person=admin, is_admin=True)
    Seat.objects.create(organization=acme, person=member)
    key = TeamAPIKeyFactory(team=acme, actor=admin)
    assert "byok_team" not in protected_tables()
    out = StringIO()
    call_command("byok_row_level_security", "enable", "--sql", stdout=out)
    assert 'FROM "organizations_seat" m WHERE m."organization_id" = $1' in out.getvalue()
    call_command("byok_row_level_security", "enable", stdout=StringIO())
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        cursor.execute(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS")
        cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"SET ROLE {role}")
    for user, expected in ((member, [key.pk]), (outsider, [])):
        with rls.acting_for(user):
            assert list(UserAPIKey.objects.values_list("pk", flat=True)) == expected
finally:
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")
    on.disable()
    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
print("ok")
"""


@on_postgresql
@pytest.mark.multiprocess
def test_a_host_team_model_and_its_membership_table():
    result = run_in_test_project(
        HOST_TEAMS.replace("__role__", f"{ROLE}_host"), settings="organizations_settings"
    )
    assert result.stdout.strip() == "ok"
