"""PostgreSQL row-level security, the tables' side: the policies on byok's tables.

A row is visible when its user is the session's ``byok.user_id``, or its team is one
of that user's teams, or the session's ``byok.rls_bypass`` is ``on`` (:mod:`byok.rls`
sets both). The statements are built from the models' metadata, so they follow a
custom user model (the id is cast to its primary key's type, which keeps the
indexes usable) and a host's team model and membership table (``BYOK_TEAM_MODEL``,
``BYOK["TEAM_ADAPTER"]``).

Left out: ``byok_datakey`` (the keyring unwraps whichever data key a row names,
whoever owns the row) and the re-check tables (workers' bookkeeping, no owner).
"""

from __future__ import annotations

from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from byok import teams
from byok.models import (
    AuditEvent,
    Budget,
    KeyUsage,
    Notification,
    NotificationOptOut,
    PlatformUsage,
    Reservation,
    ServicePreference,
    Team,
    TeamMembership,
    UserAPIKey,
    team_model,
)
from byok.rls import BYPASS_VARIABLE, USER_VARIABLE

#: The name of byok's policy on each table.
POLICY = "byok_rls"
#: The function that lists the session user's teams (see :func:`teams_function`).
TEAMS_FUNCTION = "byok_rls_team_ids"


class TableState(NamedTuple):
    """What ``byok_row_level_security status`` reports for one table."""

    table: str
    exists: bool
    enabled: bool
    forced: bool
    has_policy: bool
    owner: str | None

    @property
    def protected(self) -> bool:
        return self.enabled and self.forced and self.has_policy


class Builder:
    """The SQL for one connection: quoting, column names and the session's user id."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.quote = connection.ops.quote_name
        user_type = get_user_model()._meta.pk.rel_db_type(connection)
        self.team_type = team_model()._meta.pk.rel_db_type(connection)
        self.me = f"NULLIF(current_setting('{USER_VARIABLE}', true), '')::{user_type}"
        self.bypass = f"current_setting('{BYPASS_VARIABLE}', true) = 'on'"
        # The cast makes it one array (evaluated once per statement), not a subquery's rows.
        self.my_teams = f"(SELECT {TEAMS_FUNCTION}())::{self.team_type}[]"

    def column(self, model: type[models.Model], field: str) -> str:
        return str(self.quote(str(model._meta.get_field(field).column)))  # type: ignore[union-attr]

    def table(self, model: type[models.Model]) -> str:
        return str(self.quote(model._meta.db_table))

    def mine(self, model: type[models.Model], field: str = "user") -> str:
        return f"{self.column(model, field)} = {self.me}"

    def my_teams_have(self, model: type[models.Model], field: str = "team") -> str:
        return f"{self.column(model, field)} = ANY ({self.my_teams})"

    def visible_through(self, model: type[models.Model], field: str) -> str:
        """The row's ``field`` points at a row of its model that is visible itself."""
        target = model._meta.get_field(field).related_model
        assert isinstance(target, type)
        pk, column = self.quote(str(target._meta.pk.column)), self.column(model, field)
        # Only quoted names from the models' metadata go into the text.
        return f"EXISTS (SELECT 1 FROM {self.table(target)} t WHERE t.{pk} = {column})"  # noqa: S608

    def teams_function(self) -> str:
        """The session user's team ids, read with the bypass on so that the membership
        table's own policy does not recurse. A policy calls it in a subquery, which
        PostgreSQL runs once per statement, not once per row."""
        adapter = teams.adapter()
        membership = teams.membership_model()
        team, user = (
            self.column(membership, adapter.team_field),
            self.column(membership, adapter.user_field),
        )
        return (  # only quoted names from the models' metadata go into the text
            f"CREATE OR REPLACE FUNCTION {TEAMS_FUNCTION}() RETURNS {self.team_type}[] "  # noqa: S608
            f"LANGUAGE sql STABLE SET {BYPASS_VARIABLE} = 'on' AS $$ "
            f"SELECT coalesce(array_agg(m.{team}), '{{}}') FROM {self.table(membership)} m "
            f"WHERE m.{user} = {self.me} $$"
        )

    def predicates(self) -> dict[type[models.Model], str]:
        """Each protected model and what makes one of its rows visible (besides the bypass)."""

        def owned(model: type[models.Model]) -> str:
            return f"{self.mine(model)} OR {self.my_teams_have(model)}"

        found: dict[type[models.Model], str] = {
            UserAPIKey: owned(UserAPIKey),
            ServicePreference: owned(ServicePreference),
            Budget: owned(Budget),
            # The caller's own usage, and any usage of a key the session sees.
            KeyUsage: f"{self.mine(KeyUsage)} OR {self.visible_through(KeyUsage, 'key')}",
            PlatformUsage: self.mine(PlatformUsage),
            Reservation: self.visible_through(Reservation, "budget"),
            AuditEvent: (
                f"{self.mine(AuditEvent, 'owner')} OR {self.mine(AuditEvent, 'actor')} "
                f"OR {self.my_teams_have(AuditEvent)}"
            ),
            Notification: self.mine(Notification),
            NotificationOptOut: self.mine(NotificationOptOut),
            TeamMembership: f"{self.mine(TeamMembership)} OR {self.my_teams_have(TeamMembership)}",
        }
        if team_model() is Team:  # a host's own team model is the host's to protect
            found[Team] = self.my_teams_have(Team, "id")
        return found

    def enable(self) -> list[str]:
        statements = [self.teams_function()]
        for model, predicate in self.predicates().items():
            table = self.table(model)
            condition = f"{self.bypass} OR {predicate}"
            statements += [
                f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
                f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
                f"DROP POLICY IF EXISTS {POLICY} ON {table}",
                f"CREATE POLICY {POLICY} ON {table} USING ({condition}) WITH CHECK ({condition})",
            ]
        return statements

    def disable(self) -> list[str]:
        statements = []
        for model in self.predicates():
            table = self.table(model)
            statements += [
                f"DROP POLICY IF EXISTS {POLICY} ON {table}",
                f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
                f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
            ]
        return [*statements, f"DROP FUNCTION IF EXISTS {TEAMS_FUNCTION}()"]


def protected_tables() -> list[str]:
    return [model._meta.db_table for model in _models()]


def _models() -> list[type[models.Model]]:
    models_ = [
        UserAPIKey, ServicePreference, Budget, KeyUsage, PlatformUsage, Reservation,
        AuditEvent, Notification, NotificationOptOut, TeamMembership,
    ]  # fmt: skip
    return [*models_, Team] if team_model() is Team else models_


def run(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def states(connection: BaseDatabaseWrapper) -> list[TableState]:
    """Whether each of byok's tables has row-level security, forced, with byok's policy."""
    tables = protected_tables()
    quoted = [connection.ops.quote_name(table) for table in tables]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.name, c.oid IS NOT NULL, coalesce(c.relrowsecurity, false), "
            "coalesce(c.relforcerowsecurity, false), "
            "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s), "
            "pg_get_userbyid(c.relowner) "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, position) "
            "LEFT JOIN pg_class c ON c.oid = to_regclass(t.name) ORDER BY t.position",
            [POLICY, quoted],
        )
        rows = cursor.fetchall()
    return [TableState(table, *row[1:]) for table, row in zip(tables, rows, strict=True)]


class Role(NamedTuple):
    name: str
    superuser: bool
    bypasses: bool


def current_role(connection: BaseDatabaseWrapper) -> Role:
    """The role the connection's statements run as (``SET ROLE`` included)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        name, superuser, bypasses = cursor.fetchone()
    return Role(name, superuser, bypasses)
