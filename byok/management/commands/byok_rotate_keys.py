"""Re-encrypt every stored secret under the primary key (the first of
BYOK['ENCRYPTION_KEYS'], or the KMS's current data key), or (``--verify``) find the
stored secrets that no configured key decrypts, or (``--rewrap``) wrap the KMS's data
keys again under BYOK['KMS']['KEY_ID']."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from byok import audit
from byok.exceptions import KmsError
from byok.kms import rewrap_data_keys
from byok.rls import bypassing
from byok.rotation import RotationReport, Unreadable, VerifyReport, plan, rotate, verify


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the primary key (the first of "
        "BYOK['ENCRYPTION_KEYS'], or with BYOK['KEYRING'] = 'kms' the KMS's data key), "
        "in format 2 (bound to its row). "
        "Batched, resumable and safe to run again; prints no secret. With --verify, "
        "decrypt every stored secret instead and list the rows that fail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows re-encrypted per transaction (default 500).",
        )
        what = parser.add_mutually_exclusive_group()
        what.add_argument(
            "--dry-run", action="store_true", help="Only report how many rows each key protects."
        )
        what.add_argument(
            "--rewrap",
            action="store_true",
            help=(
                "Wrap every stored data key again under BYOK['KMS']['KEY_ID'] (after "
                "rotating the KMS key, or moving to another); re-encrypts no secret."
            ),
        )
        what.add_argument(
            "--verify",
            action="store_true",
            help=(
                "Decrypt every stored secret (printing none) and list the rows that fail, "
                "per encryption key and format; exit status 1 if any. Changes nothing."
            ),
        )

    @bypassing
    def handle(
        self,
        *args: Any,
        batch_size: int,
        dry_run: bool,
        verify: bool,
        rewrap: bool = False,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if rewrap:
            self._rewrap()
            return
        if verify:
            self._verify(batch_size)
            return
        report = plan()
        self._table("before", report.before, report)
        self._formats("before", report.formats_before)
        if dry_run:
            self.stdout.write(
                f"Dry run: {report.pending} rows would be re-encrypted "
                f"({report.pending_upgrades} of them upgraded from format 1 to format 2)."
            )
            return
        with audit.source("command:byok_rotate_keys"):
            rotate(report, batch_size=batch_size, progress=self._progress)
        self._table("after", report.after, report)
        self._formats("after", report.formats_after)
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

    def _rewrap(self) -> None:
        try:
            report = rewrap_data_keys()
        except (ImproperlyConfigured, KmsError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.rewrapped} data keys wrapped again under {report.kms_key}; "
                "no secret was re-encrypted."
            )
        )

    def _verify(self, batch_size: int) -> None:
        self._unreadable_header = False
        report = verify(batch_size=batch_size, found=self._unreadable)
        self.stdout.write("Rows per encryption key and format (checked, failed):")
        known = report.known_encryption_key_ids
        for (encryption_key_id, token_format), checked in report.checked.items():
            role = self._role(encryption_key_id, known[:1], known)
            failed = report.failed.get((encryption_key_id, token_format), 0)
            self.stdout.write(
                f"  {encryption_key_id}  {token_format:<3} {role:<15} {checked:>10} {failed:>10}"
            )
        self._verified(report)

    def _unreadable(self, row: Unreadable) -> None:
        if not self._unreadable_header:
            self.stdout.write(
                "Rows that cannot be decrypted (encryption key, format, row, owner, service):"
            )
            self._unreadable_header = True
        self.stdout.write(
            f"  {row.encryption_key_id}  {row.format}  {row.row}  {row.owner}  {row.service}"
            f"  ({row.reason})"
        )

    def _verified(self, report: VerifyReport) -> None:
        checked = sum(report.checked.values())
        if report.failures:
            raise CommandError(
                f"{report.failures} of {checked} stored secrets cannot be decrypted: put their "
                "keys back in BYOK['ENCRYPTION_KEYS'], or have their owners enter them again."
            )
        self.stdout.write(self.style.SUCCESS(f"All {checked} stored secrets decrypt."))

    def _formats(self, when: str, counts: dict[tuple[str, str], int]) -> None:
        self.stdout.write(f"Rows per encryption key and format {when}:")
        for (encryption_key_id, token_format), rows in counts.items():
            self.stdout.write(f"  {encryption_key_id}  {token_format:<3} {rows:>10}")

    def _progress(self, done: int, total: int) -> None:
        self.stdout.write(f"Re-encrypted {done} of {total} rows ({done * 100 // max(total, 1)}%)")

    def _table(self, when: str, counts: dict[str, int], report: RotationReport) -> None:
        self.stdout.write(f"Rows per encryption key {when}:")
        known = report.known_encryption_key_ids
        for encryption_key_id in [*known, *(k for k in counts if k not in known)]:
            role = self._role(encryption_key_id, [report.primary_encryption_key_id], known)
            rows = counts.get(encryption_key_id, 0)
            self.stdout.write(f"  {encryption_key_id}  {role:<15} {rows:>10}")

    @staticmethod
    def _role(encryption_key_id: str, primary: list[str], known: list[str]) -> str:
        if encryption_key_id in primary:
            return "primary"
        return "older key" if encryption_key_id in known else "NOT CONFIGURED"
