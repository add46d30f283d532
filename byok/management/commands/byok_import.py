"""Import a user's (or a team's) keys from a ``.env`` file or a JSON list."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from byok import audit
from byok.importing import MAX_BYTES, import_file
from byok.management.users import find_team, find_user
from byok.models import Environment
from byok.rls import bypassing


class Command(BaseCommand):
    help = (
        "Import keys for one user (or one team) from a .env file (OPENAI_API_KEY=…, "
        "TWILIO_ACCOUNT_SID=… and so on) or a JSON list. Prints one line per entry, never a "
        "secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The .env or JSON file; - reads standard input.")
        owner = parser.add_mutually_exclusive_group(required=True)
        owner.add_argument("--user", help="The owner: their username (or other login) or id.")
        owner.add_argument(
            "--team", help="The owner is this team (its members use the keys): its id or name."
        )
        parser.add_argument(
            "--environment",
            choices=Environment.values,
            help="The environment of the imported keys (default: BYOK['DEFAULT_ENVIRONMENT'], "
            "production unless set).",
        )
        parser.add_argument(
            "--test", action="store_true", help="Test each key first; skip those rejected."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check everything, store nothing."
        )
        parser.add_argument(
            "--atomic",
            action="store_true",
            help="Import everything or, if anything fails, nothing.",
        )

    @bypassing
    def handle(self, *args: Any, **options: Any) -> None:
        user = find_user(options["user"]) if options["user"] is not None else None
        team = find_team(options["team"]) if options["team"] is not None else None
        data = self._read(options["file"])
        try:
            with audit.source("command:byok_import"):
                report = import_file(
                    user,
                    data,
                    team=team,
                    environment=options["environment"],
                    test=options["test"],
                    dry_run=options["dry_run"],
                    atomic=options["atomic"],
                )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        for entry in report.entries:
            self.stdout.write(str(entry))
        summary = ", ".join(f"{outcome}: {count}" for outcome, count in report.counts().items())
        self.stdout.write(f"{'Dry run. ' if options['dry_run'] else ''}{summary}.")
        if report.failed:
            count = len(report.failed)
            raise CommandError(
                f"{count} {'entry' if count == 1 else 'entries'} could not be imported."
            )

    def _read(self, path: str) -> bytes:
        """At most one byte more than the limit, so a huge file is refused unread."""
        if path == "-":
            return sys.stdin.buffer.read(MAX_BYTES + 1)
        try:
            with open(path, "rb") as file:
                return file.read(MAX_BYTES + 1)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
