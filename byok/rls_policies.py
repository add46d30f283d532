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
#: The functions the policies call (see :meth:`Builder.functions`).
IN_TEAM, SEES_KEY, SEES_BUDGET = "byok_rls_in_team", "byok_rls_sees_key", "byok_rls_sees_budget"


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
    """The SQL for one connection: quoting, column names and the session's user id.

    What PostgreSQL must plan on each statement stays small: a policy compares the
    row's user with the session's, and asks a PL/pgSQL function (whose own query
    plan is cached for the session) about a team, a key or a budget, only for a row
    that is not the user's own.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.quote = connection.ops.quote_name
        user_type = get_user_model()._meta.pk.rel_db_type(connection)
        self.me = f"NULLIF(current_setting('{USER_VARIABLE}', true), '')::{user_type}"
        self.bypass = f"current_setting('{BYPASS_VARIABLE}', true) = 'on'"

    def column(self, model: type[models.Model], field: str) -> str:
        return str(self.quote(str(model._meta.get_field(field).column)))  # type: ignore[union-attr]

    def table(self, model: type[models.Model]) -> str:
        return str(self.quote(model._meta.db_table))

    def pk_type(self, model: type[models.Model]) -> str:
        return str(model._meta.pk.rel_db_type(self.connection))

    def mine(self, model: type[models.Model], field: str = "user") -> str:
        return f"{self.column(model, field)} = {self.me}"

    def my_team(self, model: type[models.Model], field: str = "team") -> str:
        return f"{IN_TEAM}({self.column(model, field)})"

    def signatures(self) -> list[str]:
        return [
            f"{IN_TEAM}({self.pk_type(team_model())})",
            f"{SEES_KEY}({self.pk_type(UserAPIKey)})",
            f"{SEES_BUDGET}({self.pk_type(Budget)})",
        ]

    def functions(self) -> list[str]:
        """Whether the session's user is in a team: read with the bypass on, so that the
        membership table's own policy does not recurse. Whether the session sees a key,
        a budget: read under their own policies."""
        adapter = teams.adapter()
        membership = teams.membership_model()
        team, user = (
            self.column(membership, adapter.team_field),
            self.column(membership, adapter.user_field),
        )
        in_team, sees_key, sees_budget = self.signatures()
        # Only quoted names from the models' metadata go into the text.
        return [
            f"CREATE OR REPLACE FUNCTION {in_team} RETURNS boolean "  # noqa: S608
            f"LANGUAGE plpgsql STABLE STRICT SET {BYPASS_VARIABLE} = 'on' "
            f"AS $$ BEGIN RETURN EXISTS (SELECT 1 FROM {self.table(membership)} m "
            f"WHERE m.{team} = $1 AND m.{user} = {self.me}); END $$",
            self._exists(sees_key, UserAPIKey),
            self._exists(sees_budget, Budget),
        ]

    def _exists(self, signature: str, model: type[models.Model]) -> str:
        pk = self.quote(str(model._meta.pk.column))
        return (
            f"CREATE OR REPLACE FUNCTION {signature} RETURNS boolean "  # noqa: S608
            f"LANGUAGE plpgsql STABLE STRICT "
            f"AS $$ BEGIN RETURN EXISTS (SELECT 1 FROM {self.table(model)} t WHERE t.{pk} = $1); "
            "END $$"
        )

    def predicates(self) -> dict[type[models.Model], str]:
        """Each protected model and what makes one of its rows visible (besides the bypass)."""

        def owned(model: type[models.Model]) -> str:
            return f"{self.mine(model)} OR {self.my_team(model)}"

        found: dict[type[models.Model], str] = {
            UserAPIKey: owned(UserAPIKey),
            ServicePreference: owned(ServicePreference),
            Budget: owned(Budget),
            # The caller's own usage, and any usage of a key the session sees.
            KeyUsage: f"{self.mine(KeyUsage)} OR {SEES_KEY}({self.column(KeyUsage, 'key')})",
            PlatformUsage: self.mine(PlatformUsage),
            Reservation: f"{SEES_BUDGET}({self.column(Reservation, 'budget')})",
            AuditEvent: (
                f"{self.mine(AuditEvent, 'owner')} OR {self.mine(AuditEvent, 'actor')} "
                f"OR {self.my_team(AuditEvent)}"
            ),
            Notification: self.mine(Notification),
            NotificationOptOut: self.mine(NotificationOptOut),
            TeamMembership: owned(TeamMembership),
        }
        if team_model() is Team:  # a host's own team model is the host's to protect
            found[Team] = self.my_team(Team, "id")
        return found

    def enable(self) -> list[str]:
        statements = self.functions()
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
        return statements + [f"DROP FUNCTION IF EXISTS {f}" for f in self.signatures()]


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
