"""The keyring: encryption, decryption, key ids and fingerprints. No ORM here.

Each entry of ``BYOK["ENCRYPTION_KEYS"]`` is 32 random bytes, URL-safe base64
encoded (``manage.py byok_generate_key`` makes one). byok derives three subkeys
from it with HKDF, one per purpose, and hands the AES and HMAC keys to
django-cryptography explicitly. ``SECRET_KEY`` is never involved, so rotating it
loses nothing.

A token looks like ``byok:<format>:<key id>:<base64 ciphertext>``. The key id is
derived from the key, so decryption tries exactly one key and the rotation
command can tell which rows still use an old one. It sits at the same place in
both formats, so SQL reads it from either with one ``SUBSTR``.

- Format 1 (``byok:1:``, read only): a Fernet token from django-cryptography
  (AES-256-CBC and HMAC-SHA256). Nothing ties it to the row it is stored in.
- Format 2 (``byok:2:``, what byok writes): AES-256-GCM, the nonce, ciphertext and
  tag in one URL-safe base64 string, with the row's id, owner and service as
  associated data (:func:`binding`): copied into another row, it does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.views.decorators.debug import sensitive_variables

from byok.conf import conf
from byok.exceptions import DecryptionError

KEY_BYTES = 32
ENCRYPTION_KEY_ID_LENGTH = 8
TOKEN_PREFIX = "byok:1:"  # noqa: S105 - a format marker, not a password
TOKEN_PREFIX_V2 = "byok:2:"  # noqa: S105 - the same length: the key id stays in place
#: Each token prefix and the name the rotation command reports it under.
FORMATS = {TOKEN_PREFIX: "v1", TOKEN_PREFIX_V2: "v2"}
#: Where the format digit sits in a token, 1-based, as SQL's SUBSTR counts.
FORMAT_POSITION = len("byok:") + 1
NONCE_BYTES = 12
_ID_START = len(TOKEN_PREFIX)
_ID_END = _ID_START + ENCRYPTION_KEY_ID_LENGTH
# Where the key id sits in a token, 1-based, as SQL's SUBSTR counts.
ENCRYPTION_KEY_ID_POSITION = _ID_START + 1
_HEX_ID = re.compile(f"[0-9a-f]{{{ENCRYPTION_KEY_ID_LENGTH}}}")

HOW_TO_CONFIGURE = (
    "Generate one with 'python manage.py byok_generate_key' and give it to "
    "BYOK['ENCRYPTION_KEYS'] from the environment, not from a committed file: with "
    "the quickstart's settings, set the BYOK_ENCRYPTION_KEYS environment variable."
)


def generate_key() -> str:
    """A new random key in the format ``ENCRYPTION_KEYS`` expects."""
    return secrets.token_urlsafe(KEY_BYTES)


class MalformedKey(ValueError):
    """A configured key is not URL-safe base64 text."""


class KeyTooShort(ValueError):
    """A configured key holds fewer than 32 bytes."""


@sensitive_variables()
def parse_key(value: object) -> bytes:
    """The raw bytes of a configured key. The errors say what is wrong, never the key."""
    if not isinstance(value, str):
        raise MalformedKey(f"a key must be a string, not {type(value).__name__}")
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedKey("a key must be URL-safe base64") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != text.rstrip("=").encode():
        raise MalformedKey("a key must be URL-safe base64")
    if len(raw) < KEY_BYTES:
        raise KeyTooShort(f"a key must decode to at least {KEY_BYTES} bytes, not {len(raw)}")
    return raw


@sensitive_variables()
def _derive(material: bytes, purpose: bytes, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose).derive(material)


class EncryptionKey:
    """One configured key and the subkeys byok derives from it."""

    @sensitive_variables()
    def __init__(self, material: bytes) -> None:
        # Imported here: django_cryptography reads Django settings at import time.
        from django_cryptography.core.signing import FernetSigner
        from django_cryptography.utils.crypto import FernetBytes

        self.id = _derive(material, b"byok key id", ENCRYPTION_KEY_ID_LENGTH // 2).hex()
        self._fernet = FernetBytes(
            key=_derive(material, b"byok aes-256-cbc"),
            signer=FernetSigner(key=_derive(material, b"byok hmac-sha256"), algorithm="sha256"),
        )
        self._fingerprint_key = _derive(material, b"byok fingerprint")
        self._aead = AESGCM(_derive(material, b"byok aes-256-gcm bound v2"))

    def __repr__(self) -> str:
        return f"<EncryptionKey {self.id}>"

    @sensitive_variables()
    def encrypt(self, plaintext: bytes, associated_data: bytes) -> str:
        """A format 2 token that decrypts only with the same ``associated_data``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, associated_data)
        return f"{TOKEN_PREFIX_V2}{self.id}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"

    @sensitive_variables()
    def encrypt_v1(self, plaintext: bytes) -> str:
        """A format 1 token, as byok wrote before format 2: only for tests and benchmarks
        that need rows of the old format."""
        payload = base64.urlsafe_b64encode(self._fernet.encrypt(plaintext)).decode("ascii")
        return f"{TOKEN_PREFIX}{self.id}:{payload}"

    @sensitive_variables()
    def decrypt(self, token: str, associated_data: bytes | None = None) -> bytes:
        """The plaintext of a token of either format; ``associated_data`` (the row's
        :func:`binding`) is required for format 2 and not used by format 1."""
        if token.startswith(TOKEN_PREFIX_V2):
            return self._decrypt_v2(token, associated_data)
        from django_cryptography.core.signing import BadSignature
        from django_cryptography.utils.crypto import InvalidToken

        try:
            data = base64.urlsafe_b64decode(token[_ID_END + 1 :])
            return self._fernet.decrypt(data)
        except (binascii.Error, ValueError, BadSignature, InvalidToken):
            raise DecryptionError(
                self.id, reason="the ciphertext does not authenticate with this key"
            ) from None

    @sensitive_variables()
    def _decrypt_v2(self, token: str, associated_data: bytes | None) -> bytes:
        if associated_data is None:
            raise DecryptionError(
                self.id, reason="a format 2 ciphertext decrypts only with its row's binding"
            )
        try:
            sealed = base64.urlsafe_b64decode(token[_ID_END + 1 :])
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
        except (binascii.Error, ValueError, InvalidTag):
            raise DecryptionError(
                self.id,
                reason=(
                    "the ciphertext does not authenticate with this key in this row "
                    "(moved from another row, or tampered with)"
                ),
            ) from None

    @sensitive_variables()
    def fingerprint(self, material: bytes) -> str:
        return hmac.new(self._fingerprint_key, material, hashlib.sha256).hexdigest()


def binding(row_id: object, owner_label: str, service: str) -> bytes:
    """The associated data of a format 2 token: the row it belongs to. ``owner_label``
    is ``user:<pk>`` or ``team:<pk>``."""
    return f"byok:v2:{row_id}:{owner_label}:{service}".encode()


def format_of(token: str) -> str:
    """The format of a stored token, as the rotation command reports it (``v1``, ``v2``)."""
    return FORMATS.get(token[:_ID_START], "unknown")


def encryption_key_id_of(token: str) -> str:
    """The id of the encryption key that made ``token``; ``ValueError`` if it is not a token.

    An id is made of lowercase hex digits only, so nothing else a stored value may
    hold (a non-ASCII character, a surrogate) ever reaches an error message or a log.
    """
    encryption_key_id = token[_ID_START:_ID_END]
    if (
        token[:_ID_START] not in FORMATS
        or token[_ID_END : _ID_END + 1] != ":"
        or not _HEX_ID.fullmatch(encryption_key_id)
    ):
        raise ValueError("not a byok ciphertext")
    return encryption_key_id


class Keyring:
    """The configured keys: the first encrypts, any of them decrypts its own tokens.

    This is the whole interface stored secrets depend on (encrypt, decrypt, key
    ids, fingerprints); another backend, such as envelope encryption with a KMS,
    only has to provide the same methods.
    """

    #: Why a token of a key id this keyring does not hold cannot be decrypted.
    missing_key = "it was encrypted with a key that is not in BYOK['ENCRYPTION_KEYS']"

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ImproperlyConfigured(f"byok has no encryption key. {HOW_TO_CONFIGURE}")
        self._primary = keys[0]
        self._by_id: dict[str, EncryptionKey] = {}
        for key in keys:
            self._by_id.setdefault(key.id, key)

    @property
    def primary(self) -> EncryptionKey:
        """The key that encrypts."""
        return self._primary

    @property
    def ids(self) -> list[str]:
        """Ids of the configured keys, the primary first."""
        return list(self._by_id)

    @sensitive_variables()
    def encrypt(self, plaintext: bytes, associated_data: bytes) -> str:
        """A format 2 token under the primary key, bound to ``associated_data``."""
        return self.primary.encrypt(plaintext, associated_data)

    @sensitive_variables()
    def decrypt(self, token: str, associated_data: bytes | None = None) -> bytes:
        try:
            encryption_key_id = encryption_key_id_of(token)
        except ValueError:
            raise DecryptionError(
                "?", reason="the stored value is not a byok ciphertext"
            ) from None
        key = self.key(encryption_key_id)
        if key is None:
            raise DecryptionError(
                encryption_key_id,
                reason=self.missing_key,
            )
        return key.decrypt(token, associated_data)

    def key(self, encryption_key_id: str) -> EncryptionKey | None:
        """The configured key of that id, if any."""
        return self._by_id.get(encryption_key_id)

    @sensitive_variables()
    def fingerprint(self, material: bytes) -> str:
        """The fingerprint stored with a new secret (made with the primary key)."""
        return self.primary.fingerprint(material)

    @sensitive_variables()
    def fingerprints(self, material: bytes) -> list[str]:
        """The fingerprint under every key, to find duplicates stored before a rotation."""
        return [key.fingerprint(material) for key in self._by_id.values()]


@functools.lru_cache(maxsize=8)
@sensitive_variables()
def _keyring_for(keys: tuple[str, ...]) -> Keyring:
    return Keyring([EncryptionKey(parse_key(key)) for key in keys])


#: The keyring of the current settings, until ``BYOK`` changes (the lookup's hot path
#: reads it on every call).
_current: Keyring | None = None


def reset_keyring() -> None:
    """Forget the keyrings built so far: the next :func:`get_keyring` derives its keys
    again (the settings' change signal does this whenever ``BYOK`` changes)."""
    global _current
    _current = None
    _keyring_for.cache_clear()


@receiver(setting_changed)
def _forget_keyring(*, setting: str, **kwargs: object) -> None:
    global _current
    if setting == "BYOK":
        _current = None


@sensitive_variables()
def get_keyring() -> Keyring:
    """The keyring for the current settings (cached per distinct key list)."""
    global _current
    if _current is None:
        _current = _load_keyring()
    return _current


def configured_encryption_key_ids() -> list[str]:
    """The ids of the configured keys, without failing a page when none is usable
    (an empty list: then nothing stored can be decrypted)."""
    try:
        return get_keyring().ids
    except ImproperlyConfigured:
        return []


@sensitive_variables()
def _load_keyring() -> Keyring:
    keys = tuple(conf.ENCRYPTION_KEYS)
    kms = conf.KMS
    if kms is not None or conf.KEYRING == "kms":
        return _envelope_keyring(keys, kms)
    if not keys:
        raise ImproperlyConfigured(
            f"byok cannot store or read secrets: BYOK['ENCRYPTION_KEYS'] is empty. "
            f"{HOW_TO_CONFIGURE}"
        )
    try:
        return _keyring_for(keys)
    except ValueError as error:
        raise ImproperlyConfigured(
            f"BYOK['ENCRYPTION_KEYS'] holds an unusable key: {error}. {HOW_TO_CONFIGURE}"
        ) from None


#: Builds the keyring with a KMS from the local keys and ``BYOK["KMS"]``: set by
#: ``byok.kms`` when it is imported (byok's app does so), which keeps this module free
#: of the ORM the data keys are stored with.
envelope_keyring: Callable[[list[EncryptionKey], Mapping[str, Any], str], Keyring] | None = None


@sensitive_variables()
def _envelope_keyring(keys: tuple[str, ...], kms: Any) -> Keyring:
    """The keyring with a KMS: its data keys, and the local keys if any."""
    if not isinstance(kms, Mapping):
        raise ImproperlyConfigured(
            'BYOK["KEYRING"] is "kms" but BYOK["KMS"] does not say which KMS (see the Key '
            "management page of the documentation)."
        )
    assert envelope_keyring is not None, "byok.kms is imported by byok's app"
    try:
        local = list(_keyring_for(keys)._by_id.values()) if keys else []
    except ValueError as error:
        raise ImproperlyConfigured(
            f"BYOK['ENCRYPTION_KEYS'] holds an unusable key: {error}. {HOW_TO_CONFIGURE}"
        ) from None
    return envelope_keyring(local, kms, conf.KEYRING)
