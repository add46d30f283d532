"""Re-encrypting stored secrets under the primary key, after a new key is put first,
and upgrading format 1 ciphertexts to format 2 (bound to their row).

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
    #: Rows per (encryption key id, format), when the run started and after it.
    formats_before: dict[tuple[str, str], int] = field(default_factory=dict)
    formats_after: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def pending_upgrades(self) -> int:
        """Format 1 rows on the primary key, when the run started."""
        return self.formats_before.get((self.primary_encryption_key_id, "v1"), 0)

    @property
    def pending(self) -> int:
        """Rows on a configured key other than the primary, and format 1 rows on the
        primary, when the run started."""
        return self.pending_upgrades + sum(
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


def rows_per_key_and_format() -> dict[tuple[str, str], int]:
    """How many stored secrets each (encryption key id, format) holds: one ``GROUP BY``
    on the token's format digit, nothing decrypted."""
    rows = (
        UserAPIKey.objects.exclude(encryption_key_id="")
        .values("encryption_key_id", "credentials__format")
        .annotate(rows=Count("pk"))
        .order_by("encryption_key_id", "credentials__format")
    )
    return {
        (row["encryption_key_id"], f"v{row['credentials__format']}"): row["rows"] for row in rows
    }


@sensitive_variables()
def _reencrypt(key: UserAPIKey, keyring: Keyring) -> None:
    assert key.credentials is not None
    key.seal(key.credentials.open(keyring, binding=key.binding), keyring)


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
    return RotationReport(
        keyring.primary.id,
        keyring.ids,
        rows_per_key(),
        formats_before=rows_per_key_and_format(),
    )


def rotate(
    report: RotationReport | None = None,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> RotationReport:
    """Re-encrypt every secret that is not on the primary key, or not in format 2.
    Idempotent.

    The rows of each older key are walked in primary-key order on the
    ``(encryption_key_id, id)`` index: each batch is an index range, never a scan of
    the table, and a rerun starts where the last one stopped, since what was done is
    on the primary key now. Format 1 rows on the primary key are walked on the same
    index, skipping the format 2 rows among them.
    """
    keyring = get_keyring()
    report = report or plan()
    if not report.pending:
        report.after, report.formats_after = report.before, report.formats_before
        return report
    for old in keyring.ids:
        if old != keyring.primary.id and report.before.get(old):
            _rotate_rows_of(old, keyring, report, batch_size, progress)
    if report.pending_upgrades:
        _rotate_rows_of(keyring.primary.id, keyring, report, batch_size, progress, v1_only=True)
    report.after, report.formats_after = rows_per_key(), rows_per_key_and_format()
    audit.record(
        AuditAction.ROTATED,
        primary_encryption_key_id=report.primary_encryption_key_id,
        reencrypted=report.reencrypted,
        failed=len(report.failed),
        before=report.before,
        after=report.after,
        formats_after={f"{key} {fmt}": rows for (key, fmt), rows in report.formats_after.items()},
    )
    return report


#: What re-encrypting reads of a row: its ciphertext and what it is bound to.
_ROW_FIELDS = ("pk", "credentials", "user", "team", "service")


def next_batch(
    old: str,
    after: Any,
    size: int,
    fields: tuple[str, ...] = _ROW_FIELDS,
    *,
    v1_only: bool = False,
) -> QuerySet[UserAPIKey]:
    """The next ``size`` rows under the encryption key ``old`` after the primary key
    ``after`` (``None``: from the first), only format 1 ones if ``v1_only``: a range
    of the ``(encryption_key_id, id)`` index, read in its order, so no sort either."""
    rows = UserAPIKey.objects.filter(encryption_key_id=old)
    if v1_only:
        rows = rows.filter(credentials__format="1")
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return rows.order_by("pk").only(*fields)[:size]


def _rotate_rows_of(
    old: str,
    keyring: Keyring,
    report: RotationReport,
    batch_size: int,
    progress: Progress | None,
    *,
    v1_only: bool = False,
) -> None:
    """Re-encrypt the rows under the encryption key ``old`` (only its format 1 rows if
    ``v1_only``), one locked batch at a time."""
    using = router.db_for_write(UserAPIKey)
    last_pk = None
    while True:
        with transaction.atomic(using=using):
            rows = next_batch(old, last_pk, batch_size, v1_only=v1_only)
            batch = list(rows.select_for_update())
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
        while batch := list(next_batch(encryption_key_id, last_pk, batch_size)):
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
        key.credentials.open(keyring, binding=key.binding)
    except DecryptionError as error:
        reason = error.reason
    except ValueError:  # authenticated, yet not the JSON byok seals
        reason = "the decrypted value is not a credential mapping"
    else:
        return
    report.failed[group] = report.failed.get(group, 0) + 1
    if found is not None:
        found(Unreadable(*group, str(key.pk), key.owner.label, key.service, reason))
