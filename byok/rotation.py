"""Re-encrypting stored secrets under the primary key, after a new key is put first.

The rows of each older key are read in primary-key order from an index, one locked
batch per transaction. So a run holds one batch in memory however many rows there
are, an interrupted run loses nothing (its current batch rolls back), and running it
again carries on where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Count, QuerySet
from django.views.decorators.debug import sensitive_variables

from byok import audit
from byok.crypto import Keyring, format_of, get_keyring
from byok.exceptions import DecryptionError
from byok.models import AuditAction, UserAPIKey

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
        UserAPIKey.objects.exclude(encryption_key_id="")
        .values("encryption_key_id")
        .annotate(rows=Count("pk"))
        .order_by()
    )
    return {row["encryption_key_id"]: row["rows"] for row in rows}


@sensitive_variables()
def _reencrypt(key: UserAPIKey, keyring: Keyring) -> None:
    assert key.credentials is not None
    key.seal(key.credentials.open(keyring), keyring)


def _save_batch(keys: list[UserAPIKey], using: str) -> None:
    """Write the new ciphertexts, fingerprints and key ids: one statement, many
    parameter sets. (``bulk_update`` builds a CASE expression per row, several times
    slower.)"""
    if not keys:
        return
    connection = connections[using]
    meta, quote = UserAPIKey._meta, connection.ops.quote_name
    names = ("credentials", "fingerprint", "encryption_key_id", "id")
    fields = [meta.get_field(name) for name in names]
    columns = [quote(str(field.column)) for field in fields]  # type: ignore[union-attr]
    assignments = ", ".join(f"{column} = %s" for column in columns[:-1])
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {columns[-1]} = %s"  # noqa: S608
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
    """Re-encrypt every secret that is not on the primary key. Idempotent.

    The rows of each older key are walked in primary-key order on the
    ``(encryption_key_id, id)`` index: each batch is an index range, never a scan of
    the table, and a rerun starts where the last one stopped, since what was done is
    on the primary key now.
    """
    keyring = get_keyring()
    report = report or plan()
    if not report.pending:
        report.after = report.before
        return report
    for old in keyring.ids:
        if old != keyring.primary.id and report.before.get(old):
            _rotate_rows_of(old, keyring, report, batch_size, progress)
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


def next_batch(
    old: str, after: Any, size: int, fields: tuple[str, ...] = ("pk", "credentials")
) -> QuerySet[UserAPIKey]:
    """The next ``size`` rows under the encryption key ``old`` after the primary key
    ``after`` (``None``: from the first): a range of the ``(encryption_key_id, id)``
    index, read in its order, so no sort either."""
    rows = UserAPIKey.objects.filter(encryption_key_id=old)
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return rows.order_by("pk").only(*fields)[:size]


def _rotate_rows_of(
    old: str,
    keyring: Keyring,
    report: RotationReport,
    batch_size: int,
    progress: Progress | None,
) -> None:
    """Re-encrypt the rows under the encryption key ``old``, one locked batch at a time."""
    using = router.db_for_write(UserAPIKey)
    last_pk = None
    while True:
        with transaction.atomic(using=using):
            batch = list(next_batch(old, last_pk, batch_size).select_for_update())
            if not batch:
                return
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


@dataclass(frozen=True)
class Unreadable:
    """A stored secret that does not decrypt: where it is and why, never what it holds."""

    encryption_key_id: str
    format: str
    row: str
    owner: str
    service: str
    reason: str


@dataclass
class VerifyReport:
    """Rows checked and rows that failed, per (encryption key id, format)."""

    known_encryption_key_ids: list[str]
    checked: dict[tuple[str, str], int] = field(default_factory=dict)
    failed: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


#: What verifying reads of a row: enough to name it, and its ciphertext.
_VERIFY_FIELDS = ("pk", "credentials", "user", "team", "service")


def verify(
    *, batch_size: int = 500, found: Callable[[Unreadable], None] | None = None
) -> VerifyReport:
    """Decrypt every stored secret and throw the plaintext away, to find the rows that
    no configured key opens. Changes nothing.

    The rows of each key are walked in batches on the ``(encryption_key_id, id)``
    index, as rotation walks them, so memory stays flat: the report holds counts, and
    each failing row goes to ``found`` as it is met.
    """
    keyring = get_keyring()
    report = VerifyReport(keyring.ids)
    for encryption_key_id in sorted(rows_per_key()):
        last_pk = None
        while batch := list(next_batch(encryption_key_id, last_pk, batch_size, _VERIFY_FIELDS)):
            for key in batch:
                _verify_row(key, encryption_key_id, keyring, report, found)
            last_pk = batch[-1].pk
    return report


@sensitive_variables()
def _verify_row(
    key: UserAPIKey,
    encryption_key_id: str,
    keyring: Keyring,
    report: VerifyReport,
    found: Callable[[Unreadable], None] | None,
) -> None:
    assert key.credentials is not None
    group = (encryption_key_id, format_of(key.credentials.token))
    report.checked[group] = report.checked.get(group, 0) + 1
    try:
        key.credentials.open(keyring)
    except DecryptionError as error:
        reason = error.reason
    except ValueError:  # authenticated, yet not the JSON byok seals
        reason = "the decrypted value is not a credential mapping"
    else:
        return
    report.failed[group] = report.failed.get(group, 0) + 1
    if found is not None:
        found(Unreadable(*group, str(key.pk), key.owner.label, key.service, reason))
