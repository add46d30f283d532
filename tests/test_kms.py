"""Envelope encryption with a KMS: AWS KMS as moto serves it on 127.0.0.1 (real HTTP,
the real boto3 client), data keys stored wrapped, cached unwrapped for a bounded time,
re-wrapped without re-encrypting a secret, and moving from local keys to the KMS and
back with one command."""

from __future__ import annotations

import base64
import io
import threading
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

import byok
from byok import checks, kms
from byok.crypto import encryption_key_id_of, get_keyring, reset_keyring
from byok.exceptions import DecryptionError
from byok.models import DataKey, UserAPIKey

from factories import UserFactory
from fakes import fake_credentials
from kms_server import kms_client, kms_options
from support import with_byok, with_row_locks

pytestmark = pytest.mark.django_db


@pytest.fixture
def aws():
    """A fresh KMS key on the local KMS, and the BYOK["KMS"] that names it."""
    client = kms_client()
    key_id = client.create_key()["KeyMetadata"]["KeyId"]

    def options(key: str = key_id, **more):
        return kms_options(key, **more)

    return SimpleNamespace(client=client, key_id=key_id, options=options)


@pytest.fixture(autouse=True)
def fresh_keyring():
    reset_keyring()
    yield
    reset_keyring()


class KmsCalls:
    """The KMS operations the current keyring's client sends."""

    def __init__(self) -> None:
        self.operations: list[str] = []
        keyring = get_keyring()
        assert isinstance(keyring, kms.EnvelopeKeyring)
        keyring.kms._client.meta.events.register("before-call.kms", self._count)

    def _count(self, model, **kwargs) -> None:
        self.operations.append(model.name)


def on_kms(aws, **more):
    return with_byok(KEYRING="kms", KMS=aws.options(**more))


def test_a_secret_is_encrypted_under_a_data_key_the_kms_made_and_stored_wrapped(user, aws):
    secret = fake_credentials("openai")
    with on_kms(aws):
        key = byok.add_user_api_key(user, "openai", secret)
        assert byok.get_user_api_key(user, "openai") == secret
    (data_key,) = DataKey.objects.all()
    token = UserAPIKey.objects.get(pk=key.pk).credentials.token
    assert token.startswith("byok:2:")
    assert encryption_key_id_of(token) == data_key.id
    assert data_key.kms_key == aws.key_id
    plaintext = aws.client.decrypt(
        CiphertextBlob=base64.b64decode(data_key.wrapped), EncryptionContext=kms.AwsKms.CONTEXT
    )["Plaintext"]
    assert len(plaintext) == 32
    assert plaintext not in base64.b64decode(data_key.wrapped)


def test_once_the_data_key_is_cached_the_lookup_makes_no_kms_call_and_one_query(user, aws):
    secret = fake_credentials("openai")
    with on_kms(aws):
        byok.add_user_api_key(user, "openai", secret)
        reset_keyring()  # a new process: nothing cached
        calls = KmsCalls()
        assert byok.get_user_api_key(user, "openai") == secret
        assert calls.operations == ["Decrypt"]  # the first lookup unwraps it, once
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                assert byok.get_user_api_key(user, "openai") == secret
            assert len(queries) == 1
        assert calls.operations == ["Decrypt"]


def test_the_unwrapped_data_key_is_kept_for_cache_seconds_only(user, aws, monkeypatch):
    secret = fake_credentials("openai")
    now = [1000.0]
    monkeypatch.setattr(kms.time, "monotonic", lambda: now[0])
    with on_kms(aws, CACHE_SECONDS=60):
        byok.add_user_api_key(user, "openai", secret)
        reset_keyring()
        calls = KmsCalls()
        byok.get_user_api_key(user, "openai")
        now[0] += 59
        byok.get_user_api_key(user, "openai")
        assert calls.operations == ["Decrypt"]
        now[0] += 2
        assert byok.get_user_api_key(user, "openai") == secret
        assert calls.operations == ["Decrypt", "Decrypt"]


def test_a_ciphertext_moved_to_another_row_does_not_decrypt_under_a_data_key_either(user, aws):
    with on_kms(aws):
        mine = byok.add_user_api_key(user, "openai", fake_credentials("openai"))
        other = byok.add_user_api_key(user, "openai", fake_credentials("openai"), nickname="b")
        UserAPIKey.objects.filter(pk=other.pk).update(
            credentials=UserAPIKey.objects.get(pk=mine.pk).credentials
        )
        with pytest.raises(DecryptionError):
            UserAPIKey.objects.get(pk=other.pk).get_credentials()


def test_from_local_keys_to_the_kms_and_back_with_one_command(user, aws, settings):
    secrets = [fake_credentials("openai") for _ in range(3)]
    keys = [
        byok.add_user_api_key(user, "openai", secret, nickname=str(n))
        for n, secret in enumerate(secrets)
    ]
    local_id = get_keyring().primary.id

    def key_ids() -> set[str]:
        return {encryption_key_id_of(k.credentials.token) for k in UserAPIKey.objects.all()}

    def readable() -> list[str]:
        return [UserAPIKey.objects.get(pk=k.pk).get_credentials()["api_key"] for k in keys]

    assert key_ids() == {local_id}
    with on_kms(aws):  # the local keys stay configured: they decrypt what they made
        call_command("byok_rotate_keys", stdout=io.StringIO())
        (data_key,) = DataKey.objects.values_list("id", flat=True)
        assert key_ids() == {data_key}
        assert readable() == secrets
    with with_byok(KEYRING="local", KMS=aws.options()):  # back: the data keys decrypt
        call_command("byok_rotate_keys", stdout=io.StringIO())
        assert key_ids() == {local_id}
    assert settings.BYOK.get("KMS") is None
    assert readable() == secrets  # no KMS configured any more


def test_rewrapping_after_the_kms_key_changes_reencrypts_no_secret(user, aws):
    secret = fake_credentials("openai")
    with on_kms(aws):
        key = byok.add_user_api_key(user, "openai", secret)
    token = UserAPIKey.objects.get(pk=key.pk).credentials.token
    before = DataKey.objects.get()
    new_key = aws.client.create_key()["KeyMetadata"]["KeyId"]
    with on_kms(aws, KEY_ID=new_key):
        out = io.StringIO()
        call_command("byok_rotate_keys", "--rewrap", stdout=out)
        assert f"1 data keys wrapped again under {new_key}" in out.getvalue()
        after = DataKey.objects.get()
        assert (after.id, after.kms_key) == (before.id, new_key)
        assert after.wrapped != before.wrapped
        assert after.rewrapped_at is not None
        assert UserAPIKey.objects.get(pk=key.pk).credentials.token == token
        aws.client.disable_key(KeyId=aws.key_id)  # the old KMS key is no longer needed
        reset_keyring()
        assert byok.get_user_api_key(user, "openai") == secret
        assert DataKey.objects.count() == 1  # the rewrapped key is the current one


def test_an_unreachable_kms_is_a_decryption_error_naming_no_key(user, aws):
    with on_kms(aws):
        key = byok.add_user_api_key(user, "openai", fake_credentials("openai"))
    unreachable = {**aws.options(), "ENDPOINT_URL": "http://127.0.0.1:9"}
    with with_byok(KEYRING="kms", KMS=unreachable):
        reset_keyring()
        with pytest.raises(DecryptionError) as refused:
            UserAPIKey.objects.get(pk=key.pk).get_credentials()
    assert "AWS KMS decrypt failed" in str(refused.value.reason)


def test_rewrap_without_a_kms_is_a_command_error():
    with pytest.raises(CommandError, match="needs BYOK"):
        call_command("byok_rotate_keys", "--rewrap")


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"KEYRING": "vault"}, "byok.E024"),
        ({"KEYRING": "kms"}, "byok.E025"),
        ({"KMS": {"REGION": "us-east-1"}}, "byok.E025"),
        ({"KMS": {"KEY_ID": "k", "BACKEND": "no.such.Backend"}}, "byok.E025"),
    ],
)
def test_a_keyring_setting_that_cannot_work_is_a_check_error(values, code):
    with with_byok(**values):
        assert [message.id for message in checks.check_kms()] == [code]


def test_a_kms_keyring_needs_no_local_key(aws):
    with with_byok(ENCRYPTION_KEYS=[], **{"KEYRING": "kms", "KMS": aws.options()}):
        assert checks.check_kms() == []
        assert checks.check_encryption_keys() == []


@pytest.mark.skipif(not with_row_locks(), reason="needs PostgreSQL or MariaDB")
@pytest.mark.django_db(transaction=True)
def test_threads_storing_their_first_secrets_at_once_make_one_data_key(aws):
    users = [UserFactory() for _ in range(8)]
    barrier = threading.Barrier(len(users))
    errors = []

    def add(user):
        try:
            barrier.wait()
            byok.add_user_api_key(user, "openai", fake_credentials("openai"))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    with on_kms(aws):
        get_keyring()  # one process, nothing made yet
        workers = [threading.Thread(target=add, args=(user,)) for user in users]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert errors == []
    (data_key,) = DataKey.objects.values_list("id", flat=True)
    tokens = UserAPIKey.objects.values_list("credentials", flat=True)
    assert {encryption_key_id_of(token.token) for token in tokens} == {data_key}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"KEYRING": "kms", "KMS": None}, 'BYOK["KMS"] does not say which KMS'),
        ({"KEYRING": "kms", "KMS": "alias/byok"}, 'BYOK["KMS"] does not say which KMS'),
        ({"ENCRYPTION_KEYS": ["not a key!"]}, "BYOK['ENCRYPTION_KEYS'] holds an unusable key"),
    ],
)
def test_a_keyring_that_cannot_be_built_says_why_when_first_used(aws, values, message):
    with (
        with_byok(**{"KMS": aws.options(), **values}),
        pytest.raises(ImproperlyConfigured) as error,
    ):
        get_keyring()
    assert message in str(error.value)


def test_a_format_2_token_needs_its_rows_binding_under_a_data_key_too(user, aws):
    with on_kms(aws):
        key = byok.add_user_api_key(user, "openai", fake_credentials("openai"))
        token = UserAPIKey.objects.get(pk=key.pk).credentials.token
        with pytest.raises(DecryptionError) as refused:
            get_keyring().decrypt(token)
    assert refused.value.reason == "a format 2 ciphertext decrypts only with its row's binding"


def test_storing_a_key_while_the_kms_is_down_is_a_503_that_stores_nothing(user, aws, caplog):
    """The REST API and the pages answer 503 (try again), never a 500, and log why."""
    from django.test import Client

    from support import client_for

    unreachable = {**aws.options(), "ENDPOINT_URL": "http://127.0.0.1:9"}
    secret = fake_credentials("openai")
    browser = Client()
    browser.force_login(user)
    with with_byok(KEYRING="kms", KMS=unreachable):
        reset_keyring()
        api = client_for(user).post(
            "/api/user/api-keys/",
            {"service": "openai", "key": secret, "test": False},
            format="json",
        )
        page = browser.post(
            "/dashboard/api-keys/add/openai/", {"api_key": secret, "environment": "production"}
        )
        imported = browser.post(
            "/dashboard/api-keys/import/",
            {"file": io.BytesIO(f"OPENAI_API_KEY={secret}".encode()), "environment": "test"},
        )
    assert (api.status_code, api["Retry-After"]) == (503, "30")
    assert api.json() == {
        "detail": "The site's key storage cannot be reached right now, so nothing was saved. "
        "Try again in a moment."
    }
    for answer in (page, imported):
        assert answer.status_code == 503
        assert "key storage cannot be reached" in answer.content.decode()
    assert not UserAPIKey.objects.exists()
    assert not DataKey.objects.exists()
    logged = [r.getMessage() for r in caplog.records if r.name == "byok.kms"]
    assert len(logged) == 3  # one for each request
    assert all("AWS KMS generate_data_key failed" in m for m in logged)
    assert secret not in caplog.text


def test_staff_adding_a_key_while_the_kms_is_down_get_the_form_back_with_why(user, superuser, aws):
    from django.contrib.messages import get_messages
    from django.test import Client
    from django.urls import reverse

    from support import NO_INLINE_ROWS

    admin = Client()
    admin.force_login(superuser)
    add = reverse("admin:byok_userapikey_add")
    secret = fake_credentials("openai")
    data = {
        "user": str(user.pk), "service": "openai", "nickname": "", "environment": "production",
        "is_active": "on", "secret": secret, **NO_INLINE_ROWS,
    }  # fmt: skip
    unreachable = {**aws.options(), "ENDPOINT_URL": "http://127.0.0.1:9"}
    with with_byok(KEYRING="kms", KMS=unreachable):
        reset_keyring()
        response = admin.post(add, data)
    assert (response.status_code, response["Location"]) == (302, add)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "The site's key storage cannot be reached right now, so nothing was saved. "
        "Try again in a moment."
    ]
    assert not UserAPIKey.objects.exists()
    assert not DataKey.objects.exists()
