"""Put PostgreSQL row-level security on byok's tables, take it off, or report it."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from byok import rls_policies
from byok.conf import conf


class Command(BaseCommand):
    help = (
        "enable: turn on row-level security, FORCEd, with byok's policies on byok's tables "
        "(a request then reads only its user's rows and their teams'); disable: take it off; "
        "status: report each table. PostgreSQL only; run it as the tables' owner, and "
        "again after upgrading byok."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["enable", "disable", "status"])
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database whose tables to change (default: %(default)s).",
        )
        parser.add_argument(
            "--sql",
            action="store_true",
            help="Print the statements instead of running them (to apply them yourself).",
        )

    def handle(self, *args: Any, action: str, database: str, sql: bool, **options: Any) -> None:
        if database not in connections:
            raise CommandError(f"There is no database {database!r} in DATABASES.")
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(
                f"Row-level security needs PostgreSQL; database {database!r} is "
                f"{connection.vendor}."
            )
        if action == "status":
            self.report(connection)
            return
        if action == "enable" and not conf.POSTGRES_ROW_LEVEL_SECURITY and not sql:
            raise CommandError(
                "Set BYOK['POSTGRES_ROW_LEVEL_SECURITY'] = True first (and add "
                "byok.middleware.RowLevelSecurityMiddleware): without it no request would "
                "see any of byok's rows."
            )
        builder = rls_policies.Builder(connection)
        statements = builder.enable() if action == "enable" else builder.disable()
        if sql:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(using=database):
            rls_policies.run(connection, statements)
        tables = len(rls_policies.protected_tables())
        done = "on, forced," if action == "enable" else "off"
        self.stdout.write(self.style.SUCCESS(f"Row-level security is {done} on {tables} tables."))

    def report(self, connection: Any) -> None:
        setting = "on" if conf.POSTGRES_ROW_LEVEL_SECURITY else "off"
        self.stdout.write(f"BYOK['POSTGRES_ROW_LEVEL_SECURITY'] is {setting}.")
        role = rls_policies.current_role(connection)
        bypasses = role.superuser or role.bypasses
        self.stdout.write(
            f"Connected as {role.name}" + (" (bypasses row-level security)." if bypasses else ".")
        )
        for state in rls_policies.states(connection):
            if not state.exists:
                what = "no such table (migrate first)"
            elif state.protected:
                what = "protected"
            else:
                missing = [
                    name
                    for name, present in (
                        ("enabled", state.enabled),
                        ("forced", state.forced),
                        ("byok's policy", state.has_policy),
                    )
                    if not present
                ]
                what = "not protected (not " + ", not ".join(missing) + ")"
            self.stdout.write(f"  {state.table}: {what}")
