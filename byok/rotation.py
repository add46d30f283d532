"""Re-encrypting stored secrets under the primary key, after a new key is put first.

Rows are read in primary-key order, one locked batch per transaction, and only
rows that are not yet on the primary key are selected. So a run holds one batch
in memory however many rows there are, an interrupted run loses nothing (its
current batch rolls back), and running it again just carries on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.db.models import Count
from django.views.decorators.debug import sensitive_variables

from byok import audit
from byok.crypto import Keyring, get_keyring
from byok.exceptions import DecryptionError
from byok.fields import SealedCredentials, canonical_bytes
from byok.models import AuditAction, UserAPIKey, UserAPIKeyQuerySet

Progress = Callable[[int, int], None]


@dataclass
class RotationReport:
    primary_encryption_key_id: str
    known_encryption_key_ids: list[str]
    before: dict[str, int]
    after: dict[str, int] = field(default_factory=dict)
    reencrypted: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """Rows on a configured key other than the primary, when the run started."""
        return sum(
            count
            for encryption_key_id, count in self.before.items()
            if encryption_key_id != self.primary_encryption_key_id
            and encryption_key_id in self.known_encryption_key_ids
        )

    @property
    def on_unknown_keys(self) -> dict[str, int]:
        """Rows (after the run) whose key is no longer configured: unreadable."""
        counts = self.after or self.before
        return {k: n for k, n in counts.items() if k not in self.known_encryption_key_ids}


def rows_per_key() -> dict[str, int]:
    """How many stored secrets each encryption key id protects."""
    rows = (
        UserAPIKey.objects.exclude(credentials=None)
        .values("credentials__encryption_key_id")
        .annotate(rows=Count("pk"))
        .order_by()
    )
    return {row["credentials__encryption_key_id"]: row["rows"] for row in rows}


def _pending(keyring: Keyring) -> UserAPIKeyQuerySet:
    others = [other for other in keyring.ids if other != keyring.primary.id]
    return UserAPIKey.objects.filter(credentials__encryption_key_id__in=others)


@sensitive_variables()
def _reencrypt(key: UserAPIKey, keyring: Keyring) -> None:
    assert key.credentials is not None
    credentials = key.credentials.open(keyring)
    key.credentials = SealedCredentials.seal(credentials, keyring)
    key.fingerprint = keyring.fingerprint(canonical_bytes(credentials))


def _save_batch(keys: list[UserAPIKey], using: str) -> None:
    """Write the new ciphertexts and fingerprints: one statement, many parameter sets.

    (``bulk_update`` builds a CASE expression per row, several times slower.)
    """
    if not keys:
        return
    connection = connections[using]
    meta, quote = UserAPIKey._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in ("credentials", "fingerprint", "id")]
    credentials, fingerprint, pk = (quote(str(field.column)) for field in fields)  # type: ignore[union-attr]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {credentials} = %s, {fingerprint} = %s "  # noqa: S608
        f"WHERE {pk} = %s"
    )
    params = [
        [
            field.get_db_prep_save(getattr(key, field.attname), connection)  # type: ignore[union-attr]
            for field in fields
        ]
        for key in keys
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def plan() -> RotationReport:
    """Where things stand: how many rows each key protects, and what is to do."""
    keyring = get_keyring()
    return RotationReport(keyring.primary.id, keyring.ids, rows_per_key())


def rotate(
    report: RotationReport | None = None,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> RotationReport:
    """Re-encrypt every secret that is not on the primary key. Idempotent."""
    keyring = get_keyring()
    report = report or plan()
    if not report.pending:
        report.after = report.before
        return report
    using = router.db_for_write(UserAPIKey)
    last_pk = None
    while True:
        with transaction.atomic(using=using):
            batch_query = _pending(keyring).order_by("pk").select_for_update()
            if last_pk is not None:
                batch_query = batch_query.filter(pk__gt=last_pk)
            batch = list(batch_query.only("pk", "credentials")[:batch_size])
            if not batch:
                break
            done = []
            for key in batch:
                try:
                    _reencrypt(key, keyring)
                except DecryptionError:
                    report.failed.append(str(key.pk))
                else:
                    done.append(key)
            _save_batch(done, using)
        last_pk = batch[-1].pk
        report.reencrypted += len(done)
        if progress is not None:
            progress(report.reencrypted + len(report.failed), report.pending)
    report.after = rows_per_key()
    audit.record(
        AuditAction.ROTATED,
        primary_encryption_key_id=report.primary_encryption_key_id,
        reencrypted=report.reencrypted,
        failed=len(report.failed),
        before=report.before,
        after=report.after,
    )
    return report
