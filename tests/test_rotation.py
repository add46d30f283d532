from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

import byok
from byok import rotation
from byok.crypto import get_keyring
from byok.exceptions import DecryptionError
from byok.models import AuditEvent, UserAPIKey

from factories import TeamAPIKeyFactory, TeamFactory, UserAPIKeyFactory
from fakes import fake_credentials
from support import OTHER_ENCRYPTION_KEY

pytestmark = pytest.mark.django_db

OLD_KEY = settings.BYOK["ENCRYPTION_KEYS"][0]
NEW_KEY = OTHER_ENCRYPTION_KEY


def keys(*values):
    return override_settings(BYOK={**settings.BYOK, "ENCRYPTION_KEYS": list(values)})


@pytest.fixture
def stored(user):
    """Eight keys stored under the old key, by secret."""
    secrets = {}
    for index in range(8):
        service = ["openai", "twilio", "aws_s3", "github"][index % 4]
        credentials = fake_credentials(service)
        key = UserAPIKeyFactory(user=user, service=service, credentials=credentials)
        secrets[key.pk] = credentials
    return secrets


def rotate_keys(*args):
    out = StringIO()
    call_command("byok_rotate_keys", *args, stdout=out)
    return out.getvalue()


def assert_all_decrypt(secrets):
    for key in UserAPIKey.objects.all():
        assert key.get_secret() == secrets[key.pk]


def test_full_rotation(stored, user):
    with keys(OLD_KEY):
        old_id = get_keyring().primary.id
    with keys(NEW_KEY, OLD_KEY):
        new_id = get_keyring().primary.id
        assert_all_decrypt(stored)  # old rows still decrypt with the new key first
        output = rotate_keys("--batch-size", "3")
        assert rotation.rows_per_key() == {new_id: 8}
    with keys(NEW_KEY):  # the old key is gone: every row still decrypts
        assert_all_decrypt(stored)
        user_key = UserAPIKey.objects.get(service="openai", pk__in=list(stored)[:1])
        assert byok.get_user_api_key(user, "openai") in stored.values()
        with pytest.raises(Exception, match="already stored"):
            UserAPIKeyFactory(
                user=user, service="openai", credentials=stored[user_key.pk]
            )  # fingerprints were re-made too
    assert f"{old_id}  older key                8" in output
    assert f"{new_id}  primary                  8" in output
    assert "Re-encrypted 3 of 8 rows (37%)" in output
    assert "Re-encrypted 8 of 8 rows (100%)" in output
    assert "can be removed" in output
    event = AuditEvent.objects.get(action="rotated")
    assert event.metadata["reencrypted"] == 8


def test_output_never_contains_a_secret(stored):
    with keys(NEW_KEY, OLD_KEY):
        output = rotate_keys("--batch-size", "2") + rotate_keys("--dry-run")
    for credentials in stored.values():
        values = [credentials] if isinstance(credentials, str) else credentials.values()
        for value in values:
            assert value not in output


def test_dry_run_changes_nothing(stored):
    before = list(UserAPIKey.objects.values_list("credentials", flat=True).order_by("pk"))
    with keys(NEW_KEY, OLD_KEY):
        output = rotate_keys("--dry-run")
    assert "8 rows would be re-encrypted" in output
    assert list(UserAPIKey.objects.values_list("credentials", flat=True).order_by("pk")) == before


def test_an_interrupted_run_loses_nothing_and_a_second_run_finishes(stored, monkeypatch):
    real = rotation._reencrypt
    calls = []

    def crash_in_the_second_batch(key, keyring):
        calls.append(key.pk)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(key, keyring)

    with keys(NEW_KEY, OLD_KEY):
        new_id = get_keyring().primary.id
        monkeypatch.setattr(rotation, "_reencrypt", crash_in_the_second_batch)
        with pytest.raises(KeyboardInterrupt):
            rotate_keys("--batch-size", "4")
        assert rotation.rows_per_key()[new_id] == 4  # the first batch committed
        assert_all_decrypt(stored)
        monkeypatch.setattr(rotation, "_reencrypt", real)
        output = rotate_keys("--batch-size", "4")
        assert "Re-encrypted 4 of 4 rows" in output
        assert rotation.rows_per_key() == {new_id: 8}
    with keys(NEW_KEY):
        assert_all_decrypt(stored)


def test_running_again_is_a_no_op(stored):
    with keys(NEW_KEY, OLD_KEY):
        rotate_keys()
        tokens = list(UserAPIKey.objects.values_list("credentials", flat=True).order_by("pk"))
        output = rotate_keys()
    assert "0 rows re-encrypted" in output
    assert list(UserAPIKey.objects.values_list("credentials", flat=True).order_by("pk")) == tokens


def test_rows_on_a_missing_key_are_reported_and_fail_the_command(stored):
    third = "dGVzdC1rZXktdGhyZWUtZm9yLWJ5b2stdGVzdHMtb25seSEh"
    with keys(NEW_KEY, third), pytest.raises(CommandError, match="not configured"):
        rotate_keys()


def test_a_corrupt_row_is_skipped_and_reported(stored, monkeypatch):
    def corrupt(key, keyring):
        raise DecryptionError("abcd1234", reason="test")

    monkeypatch.setattr(rotation, "_reencrypt", corrupt)
    with keys(NEW_KEY, OLD_KEY), pytest.raises(CommandError, match="8 rows failed to decrypt"):
        rotate_keys()


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError, match="at least 1"):
        rotate_keys("--batch-size", "0")


def test_statements_grow_with_batches_not_rows(user):
    def rotation_statements(rows, batch_size):
        for _ in range(rows):
            UserAPIKeyFactory(user=user)
        with keys(NEW_KEY, OLD_KEY), CaptureQueriesContext(connection) as queries:
            rotation.rotate(batch_size=batch_size)
        UserAPIKey.objects.all().delete()
        return len(queries)

    assert rotation_statements(8, 4) == rotation_statements(16, 8) == rotation_statements(2, 1)


def key_ids_in_tokens():
    """Each row's encryption_key_id column beside the key id its token names."""
    return [
        (key.encryption_key_id, key.credentials.encryption_key_id if key.credentials else "")
        for key in UserAPIKey.objects.all()
    ]


def test_the_key_id_column_follows_the_token_through_every_change(stored, user):
    from byok.keys import remove_user_api_key, update_user_api_key

    def mirrored():
        pairs = key_ids_in_tokens()
        return all(column == token for column, token in pairs) and pairs

    assert mirrored()
    first = UserAPIKey.objects.filter(service="openai").first()
    with keys(NEW_KEY, OLD_KEY):
        new_id = get_keyring().primary.id
        update_user_api_key(first, credentials=fake_credentials("openai"))
        assert UserAPIKey.objects.get(pk=first.pk).encryption_key_id == new_id
        rotation.rotate(batch_size=3)
        assert {column for column, _ in mirrored()} == {new_id}
    remove_user_api_key(first)
    assert UserAPIKey.objects.get(pk=first.pk).encryption_key_id == ""
    assert mirrored()


def batch_query(old_id):
    return rotation.next_batch(old_id, "00000000-0000-0000-0000-000000000000", 500)


@pytest.fixture
def rotated_mostly(stored, user):
    """The eight keys on the old key among 5,000 already on the new one, analysed."""
    with keys(NEW_KEY):
        token = UserAPIKeyFactory(user=user).credentials
    done = [
        UserAPIKey(user=user, service="openai", credentials=token,
                   encryption_key_id=token.encryption_key_id, masked_key="sk-…")
        for _ in range(5000)
    ]  # fmt: skip
    UserAPIKey.objects.bulk_create(done, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute(
            f"ANALYZE {'TABLE ' if connection.vendor == 'mysql' else ''}byok_userapikey"
        )
    with keys(OLD_KEY):
        return get_keyring().primary.id


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_a_batch_is_an_index_range_without_a_sort_on_postgresql(rotated_mostly):
    plan = batch_query(rotated_mostly).select_for_update().explain()
    assert "byok_key_encryption_key_idx" in plan
    assert "Sort" not in plan
    assert "Seq Scan" not in plan


# ANALYZE TABLE commits on MariaDB: the rows it analyses must not outlive the test.
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB's planner")
def test_a_batch_is_an_index_range_without_a_sort_on_mariadb(rotated_mostly):
    plan = batch_query(rotated_mostly).explain()
    assert "byok_key_encryption_key_idx" in plan.split("Using")[0]
    assert "filesort" not in plan


@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_each_rows_key_id(user):
    from django.db.migrations.executor import MigrationExecutor

    key = UserAPIKeyFactory(user=user)
    executor = MigrationExecutor(connection)
    executor.migrate([("byok", "0003_masked_key_and_audit_actions")])
    executor.loader.build_graph()
    executor.migrate([("byok", "0004_userapikey_encryption_key_id")])
    try:
        # The one column: later migrations' columns do not exist yet.
        copied = UserAPIKey.objects.values_list("encryption_key_id", flat=True).get(pk=key.pk)
        assert copied == get_keyring().primary.id
    finally:  # back to the latest schema, for the tests that come after
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_rotation_reencrypts_team_keys_and_prints_no_secret(user):
    team = TeamFactory(owner=user)
    with keys(OLD_KEY):
        secrets = {}
        for _ in range(3):
            credentials = fake_credentials("openai")
            secrets[TeamAPIKeyFactory(team=team, actor=user, credentials=credentials).pk] = (
                credentials
            )
        user_secret = fake_credentials("github")
        secrets[UserAPIKeyFactory(user=user, service="github", credentials=user_secret).pk] = (
            user_secret
        )
    with keys(NEW_KEY, OLD_KEY):
        output = rotate_keys()
        assert not [secret for secret in secrets.values() if secret in output]
    with keys(NEW_KEY):  # the old key gone: every row is under the new one
        for key in UserAPIKey.objects.all():
            assert key.get_secret() == secrets[key.pk]
    assert UserAPIKey.objects.filter(team=team).count() == 3
