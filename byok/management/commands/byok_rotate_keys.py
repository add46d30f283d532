"""Re-encrypt every stored secret under the first key of BYOK['ENCRYPTION_KEYS']."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from byok import audit
from byok.rotation import RotationReport, plan, rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first key of BYOK['ENCRYPTION_KEYS']. "
        "Batched, resumable and safe to run again; prints no secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows re-encrypted per transaction (default 500).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only report how many rows each key protects."
        )

    def handle(self, *args: Any, batch_size: int, dry_run: bool, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = plan()
        self._table("before", report.before, report)
        if dry_run:
            self.stdout.write(f"Dry run: {report.pending} rows would be re-encrypted.")
            return
        with audit.source("command:byok_rotate_keys"):
            rotate(report, batch_size=batch_size, progress=self._progress)
        self._table("after", report.after, report)
        self.stdout.write(self.style.SUCCESS(f"{report.reencrypted} rows re-encrypted."))
        problems = []
        if report.failed:
            problems.append(
                f"{len(report.failed)} rows failed to decrypt (tampered or corrupt): "
                + ", ".join(report.failed[:20])
            )
        if report.on_unknown_keys:
            problems.append(
                "rows remain on keys that are not configured ("
                + ", ".join(f"{k}: {n}" for k, n in report.on_unknown_keys.items())
                + "); put those keys back in BYOK['ENCRYPTION_KEYS'] and run again"
            )
        if problems:
            raise CommandError("; ".join(problems) + ".")
        if len(report.known_encryption_key_ids) > 1:
            self.stdout.write(
                "Every secret is on the primary key: the other keys can be removed from "
                "BYOK['ENCRYPTION_KEYS']."
            )

    def _progress(self, done: int, total: int) -> None:
        self.stdout.write(f"Re-encrypted {done} of {total} rows ({done * 100 // max(total, 1)}%)")

    def _table(self, when: str, counts: dict[str, int], report: RotationReport) -> None:
        self.stdout.write(f"Rows per encryption key {when}:")
        known = report.known_encryption_key_ids
        for encryption_key_id in [*known, *(k for k in counts if k not in known)]:
            if encryption_key_id == report.primary_encryption_key_id:
                role = "primary"
            elif encryption_key_id in known:
                role = "older key"
            else:
                role = "NOT CONFIGURED"
            rows = counts.get(encryption_key_id, 0)
            self.stdout.write(f"  {encryption_key_id}  {role:<15} {rows:>10}")
