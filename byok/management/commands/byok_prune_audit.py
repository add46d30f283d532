"""Delete audit events older than a number of days, in small batches (run from cron)."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from byok.models import AuditEvent, AuditEventQuerySet
from byok.pruning import BATCH_SIZE, delete_in_batches
from byok.rls import bypassing


class Command(BaseCommand):
    help = (
        "Delete audit events older than --older-than days, a batch at a time so a large "
        "table is never locked for long. The only way byok deletes from the trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help="Delete events recorded more than DAYS days ago (at least 1).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Events deleted per statement (default {BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count the events that would go."
        )

    @bypassing
    def handle(
        self, *args: Any, older_than: int, batch_size: int, dry_run: bool, **options: Any
    ) -> None:
        if older_than < 1:
            raise CommandError("--older-than must be at least 1 (days).")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            cutoff = timezone.now() - timedelta(days=older_than)
        except OverflowError:
            raise CommandError("--older-than is too large.") from None
        old = AuditEvent.objects.filter(created_at__lt=cutoff)
        if dry_run:
            self.stdout.write(
                f"Dry run: {old.count()} audit events from before {cutoff:%Y-%m-%d %H:%M} "
                "would be deleted."
            )
            return
        deleted = prune(old, batch_size)
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {deleted} audit events from before {cutoff:%Y-%m-%d %H:%M}."
            )
        )


def prune(events: AuditEventQuerySet, batch_size: int) -> int:
    """Delete ``events`` by batches of primary keys, each in its own short statement."""
    return delete_in_batches(events, batch_size)
