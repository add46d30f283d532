"""Storage compatibility: today's code reads what earlier versions wrote, byte for byte.

The vectors in ``tests/vectors/`` were made once and committed; they may never
change (see ``tests/vectors/README.md``). A Fernet token embeds a random IV and a
timestamp, so a token is checked by decrypting it; key ids, fingerprints, the
canonical encoding and display hints are deterministic and must match exactly.
Any change to the HKDF labels, the token prefix or ``canonical_bytes`` fails here.
"""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import override_settings

from byok import get_user_api_key
from byok.crypto import TOKEN_PREFIX, EncryptionKey, Keyring, encryption_key_id_of, parse_key
from byok.exceptions import DecryptionError
from byok.fields import SealedCredentials, canonical_bytes
from byok.models import UserAPIKey
from byok.services.registry import registry

from factories import UserAPIKeyFactory

VECTORS = json.loads((Path(__file__).parent / "vectors" / "storage_v1.json").read_text())
KEYS = VECTORS["keys"]
IDS = VECTORS["encryption_key_ids"]
SECRETS = VECTORS["secrets"]
by_service = pytest.mark.parametrize("vector", SECRETS, ids=[v["service"] for v in SECRETS])


def key(name):
    return EncryptionKey(parse_key(KEYS[name]))


def plaintext(vector):
    return vector["canonical_bytes"].encode()


def test_the_token_format_is_still_format_1():
    assert TOKEN_PREFIX == VECTORS["token_prefix"] == "byok:1:"
    for vector in SECRETS:
        for name, token in vector["token"].items():
            assert token.startswith(f"byok:1:{IDS[name]}:")


@pytest.mark.parametrize("name", ["A", "B"])
def test_encryption_key_ids_are_the_known_ones(name):
    assert key(name).id == IDS[name]
    assert Keyring([key(name)]).ids == [IDS[name]]


@by_service
@pytest.mark.parametrize("name", ["A", "B"])
def test_committed_tokens_still_decrypt(vector, name):
    token = vector["token"][name]
    ring = Keyring([key(name)])
    assert encryption_key_id_of(token) == IDS[name]
    assert ring.decrypt(token) == plaintext(vector)
    sealed = SealedCredentials(token)
    assert sealed.encryption_key_id == IDS[name]
    assert sealed.open(ring) == vector["credentials"]


@by_service
@pytest.mark.parametrize("name", ["A", "B"])
def test_fingerprints_are_the_known_ones(vector, name):
    assert key(name).fingerprint(plaintext(vector)) == vector["fingerprint"][name]


@by_service
def test_canonical_bytes_are_the_known_ones(vector):
    assert canonical_bytes(vector["credentials"]) == plaintext(vector)


@pytest.mark.parametrize("vector", VECTORS["canonical_bytes"])
def test_canonical_bytes_sort_and_escape_as_before(vector):
    """Keys sorted, no spaces, non-ASCII escaped: a fingerprint depends on every byte."""
    assert canonical_bytes(vector["credentials"]) == vector["bytes"].encode()


@by_service
def test_masked_keys_are_the_known_ones(vector):
    assert registry.get(vector["service"]).mask(vector["credentials"]) == vector["display_hint"]


@by_service
def test_a_token_encrypted_under_key_a_decrypts_after_rotating_to_key_b(vector):
    """Keyring [B, A]: B encrypts and fingerprints, A's tokens still decrypt."""
    ring = Keyring([key("B"), key("A")])
    assert ring.ids == [IDS["B"], IDS["A"]]
    assert ring.decrypt(vector["token"]["A"]) == plaintext(vector)
    assert ring.decrypt(vector["token"]["B"]) == plaintext(vector)
    assert encryption_key_id_of(ring.encrypt(plaintext(vector), b"a row")) == IDS["B"]
    assert ring.fingerprint(plaintext(vector)) == vector["fingerprint"]["B"]
    assert ring.fingerprints(plaintext(vector)) == [
        vector["fingerprint"]["B"],
        vector["fingerprint"]["A"],
    ]


@by_service
def test_a_token_under_a_key_no_longer_configured_names_it(vector):
    with pytest.raises(DecryptionError) as excinfo:
        Keyring([key("B")]).decrypt(vector["token"]["A"])
    assert excinfo.value.encryption_key_id == IDS["A"]


@pytest.mark.django_db
@by_service
def test_a_stored_row_made_by_format_1_is_read_and_rotated(user, vector):
    """Through the ORM: the committed token as a database row, read, deduplicated, rotated."""
    service = vector["service"]
    with override_settings(BYOK={"ENCRYPTION_KEYS": [KEYS["A"]]}):
        row = UserAPIKeyFactory(user=user, service=service, credentials=vector["credentials"])
        assert row.fingerprint == vector["fingerprint"]["A"]
        assert row.masked_key == vector["display_hint"]
        UserAPIKey.objects.filter(pk=row.pk).update(
            credentials=SealedCredentials(vector["token"]["A"])
        )
        assert get_user_api_key(user, service) == registry.get(service).present(
            vector["credentials"]
        )

    with override_settings(BYOK={"ENCRYPTION_KEYS": [KEYS["B"], KEYS["A"]]}):
        with pytest.raises(ValidationError):  # a duplicate, found by A's fingerprint
            UserAPIKeyFactory(user=user, service=service, credentials=vector["credentials"])
        call_command("byok_rotate_keys", stdout=StringIO())
        row.refresh_from_db()
        assert row.credentials.encryption_key_id == IDS["B"]
        assert row.fingerprint == vector["fingerprint"]["B"]
        assert row.masked_key == vector["display_hint"]
        assert row.credentials.format == "v2"  # rotating upgrades format 1 rows
        assert row.credentials.open(binding=row.binding) == vector["credentials"]

    with override_settings(BYOK={"ENCRYPTION_KEYS": [KEYS["B"]]}):
        assert row.get_credentials() == vector["credentials"]
