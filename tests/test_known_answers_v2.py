"""Storage format 2's known answers: today's code reads what format 2 wrote, byte for byte.

The vectors in ``tests/vectors/storage_v2.json`` were made once and committed; they
may never change (see ``tests/vectors/README.md``). An AES-GCM token embeds a random
nonce, so a token is checked by decrypting it: with byok's keyring, and independently
with the committed AES-256-GCM subkey and the documented layout, so a change to the
HKDF label, the token layout or the associated data fails here.
"""

import base64
import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byok.crypto import (
    ENCRYPTION_KEY_ID_POSITION,
    NONCE_BYTES,
    TOKEN_PREFIX_V2,
    EncryptionKey,
    Keyring,
    binding,
    encryption_key_id_of,
    parse_key,
)
from byok.exceptions import DecryptionError
from byok.fields import SealedCredentials, canonical_bytes, padded
from byok.models import UserAPIKey

VECTORS = json.loads((Path(__file__).parent / "vectors" / "storage_v2.json").read_text())
KEYS, IDS = VECTORS["keys"], VECTORS["encryption_key_ids"]
SECRETS = VECTORS["secrets"]
by_service = pytest.mark.parametrize("vector", SECRETS, ids=[v["service"] for v in SECRETS])
by_key = pytest.mark.parametrize("name", ["A", "B"])


def ring(name):
    return Keyring([EncryptionKey(parse_key(KEYS[name]))])


def associated_data(vector):
    return vector["associated_data"].encode()


def test_the_token_format_is_format_2_with_the_key_id_where_format_1_has_it():
    assert TOKEN_PREFIX_V2 == VECTORS["token_prefix"] == "byok:2:"
    for vector in SECRETS:
        for name, token in vector["token"].items():
            assert token.startswith(f"byok:2:{IDS[name]}:")
            start = ENCRYPTION_KEY_ID_POSITION - 1
            assert token[start : start + 8] == IDS[name]  # what SQL's SUBSTR reads


@by_key
def test_encryption_key_ids_are_the_known_ones(name):
    assert ring(name).ids == [IDS[name]]


@by_service
def test_the_associated_data_is_the_rows_id_owner_and_service(vector):
    row = vector["row"]
    assert binding(row["id"], row["owner"], row["service"]) == associated_data(vector)
    assert canonical_bytes(vector["credentials"]) == vector["canonical_bytes"].encode()
    assert padded(vector["canonical_bytes"].encode()) == vector["plaintext"].encode()
    assert len(vector["plaintext"]) % 16 == 0


@by_service
@by_key
def test_committed_tokens_decrypt_with_their_rows_binding(vector, name):
    token = vector["token"][name]
    assert encryption_key_id_of(token) == IDS[name]
    assert ring(name).decrypt(token, associated_data(vector)) == vector["plaintext"].encode()
    sealed = SealedCredentials(token)
    assert sealed.format == "v2"
    assert sealed.open(ring(name), binding=associated_data(vector)) == vector["credentials"]


@by_service
@by_key
def test_the_layout_is_nonce_ciphertext_and_tag_under_the_known_subkey(vector, name):
    """Decrypted without byok: the committed AES-256-GCM subkey and the documented layout."""
    sealed = base64.urlsafe_b64decode(vector["token"][name].split(":", 3)[3])
    aead = AESGCM(bytes.fromhex(VECTORS["aes_gcm_keys"][name]))
    plaintext = aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data(vector))
    assert plaintext == vector["plaintext"].encode()


@by_service
@by_key
def test_a_committed_token_in_another_row_does_not_decrypt(vector, name):
    others = [v for v in SECRETS if v is not vector]
    for other in others:
        with pytest.raises(DecryptionError, match="moved from another row"):
            ring(name).decrypt(vector["token"][name], associated_data(other))
    with pytest.raises(DecryptionError, match="binding"):
        ring(name).decrypt(vector["token"][name])


@by_service
def test_the_model_binds_a_row_as_the_vectors_do(vector, settings):
    """A row with the vector's id, owner and service opens the committed token."""
    settings.BYOK = {**settings.BYOK, "ENCRYPTION_KEYS": [KEYS["A"]]}
    kind, pk = vector["row"]["owner"].split(":", 1)
    owner_pk = uuid.UUID(pk) if "-" in pk else int(pk)
    row = UserAPIKey(
        id=uuid.UUID(vector["row"]["id"]),
        service=vector["service"],
        credentials=SealedCredentials(vector["token"]["A"]),
        **{f"{kind}_id": owner_pk},
    )
    assert row.binding == associated_data(vector)
    assert row.get_credentials() == vector["credentials"]
