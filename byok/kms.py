"""Envelope encryption: secrets encrypted under data keys that a KMS makes and wraps.

With ``BYOK["KEYRING"] = "kms"``, a new secret is encrypted exactly as under a local
key (format 2, bound to its row), but with a *data key*: 32 random bytes the KMS
generates (``GenerateDataKey``) and returns twice, in the clear and wrapped under the
KMS key. Only the wrapped copy is stored (:class:`~byok.models.DataKey`). A process
unwraps it with one ``Decrypt`` and keeps the plaintext in memory for
``CACHE_SECONDS``; while it is cached the lookup makes no KMS call and no extra query.
Tokens carry the data key's id where a local key's id goes, so the format, rotation
and ``--verify`` are the same for both kinds of key.

Rotating the KMS key re-wraps the data keys (``ReEncrypt``: the KMS never shows them
in the clear) and re-encrypts no secret: :func:`rewrap_data_keys`,
``byok_rotate_keys --rewrap``.

A KMS backend is any class with the three methods of :class:`KmsBackend`;
:class:`AwsKms` is AWS KMS through ``boto3`` (``pip install "django-byok[aws]"``).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from byok import crypto
from byok.crypto import EncryptionKey, Keyring, get_keyring, reset_keyring
from byok.exceptions import DecryptionError
from byok.exceptions import KmsError as KmsError  # where backends import it from
from byok.models import DataKey

DEFAULT_BACKEND = "byok.kms.AwsKms"
DEFAULT_CACHE_SECONDS = 300
#: Seconds a client is told to wait (``Retry-After``) when the KMS cannot be used.
RETRY_AFTER = 30


logger = logging.getLogger("byok.kms")


def unavailable(error: KmsError) -> str:
    """Log that storing a key needed the KMS and it failed; what to tell the user."""
    logger.error("The KMS could not be used: %s", error)
    return _(
        "The site's key storage cannot be reached right now, so nothing was saved. "
        "Try again in a moment."
    )


class KmsBackend(Protocol):
    """What byok asks of a KMS. ``options`` is ``BYOK["KMS"]``."""

    def __init__(self, options: Mapping[str, Any]) -> None: ...

    def generate_data_key(self) -> tuple[bytes, bytes]:
        """A new 32-byte data key: ``(plaintext, wrapped)``."""

    def decrypt(self, wrapped: bytes) -> bytes:
        """The plaintext of a wrapped data key."""

    def rewrap(self, wrapped: bytes) -> bytes:
        """The data key wrapped again under the configured KMS key (and its newest
        material), without the plaintext leaving the KMS."""


class AwsKms:
    """AWS KMS. Options: ``KEY_ID`` (a key id, ARN or alias), ``REGION``,
    ``ENDPOINT_URL`` (for a VPC endpoint or a local KMS), ``CLIENT_OPTIONS`` (more
    arguments for ``boto3.client``). Credentials come from boto3's usual chain."""

    #: Bound to every data key: a wrapped key unwraps only under the same context, and
    #: CloudTrail shows it on every call.
    CONTEXT = {"application": "django-byok", "purpose": "data key"}

    def __init__(self, options: Mapping[str, Any]) -> None:
        try:
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise ImproperlyConfigured(
                'BYOK["KMS"] uses AWS KMS, which needs boto3: pip install "django-byok[aws]".'
            ) from None
        self.key_id = str(options["KEY_ID"])
        self._errors = (BotoCoreError, ClientError)
        self._client = boto3.client(
            "kms",
            region_name=options.get("REGION"),
            endpoint_url=options.get("ENDPOINT_URL"),
            **dict(options.get("CLIENT_OPTIONS") or {}),
        )

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(**arguments)  # type: ignore[no-any-return]
        except self._errors as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            raise KmsError(f"AWS KMS {operation} failed: {code or type(error).__name__}") from None

    @sensitive_variables()
    def generate_data_key(self) -> tuple[bytes, bytes]:
        answer = self._call(
            "generate_data_key",
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext=self.CONTEXT,
        )
        return answer["Plaintext"], answer["CiphertextBlob"]

    @sensitive_variables()
    def decrypt(self, wrapped: bytes) -> bytes:
        answer = self._call("decrypt", CiphertextBlob=wrapped, EncryptionContext=self.CONTEXT)
        return answer["Plaintext"]  # type: ignore[no-any-return]

    def rewrap(self, wrapped: bytes) -> bytes:
        answer = self._call(
            "re_encrypt",
            CiphertextBlob=wrapped,
            SourceEncryptionContext=self.CONTEXT,
            DestinationKeyId=self.key_id,
            DestinationEncryptionContext=self.CONTEXT,
        )
        return answer["CiphertextBlob"]  # type: ignore[no-any-return]


def backend_for(options: Mapping[str, Any]) -> KmsBackend:
    """The backend ``BYOK["KMS"]`` names, built from it."""
    if not options.get("KEY_ID"):
        raise ImproperlyConfigured('BYOK["KMS"] needs a "KEY_ID": the KMS key that wraps.')
    backend: type[KmsBackend] = import_string(options.get("BACKEND") or DEFAULT_BACKEND)
    return backend(options)


@dataclass
class _Wrapped:
    wrapped: bytes
    kms_key: str


class EnvelopeKeyring(Keyring):
    """The keyring with a KMS: the local keys (if any) and the stored data keys all
    decrypt; the current data key (``encrypt_with_kms``) or the first local key
    encrypts. Data keys are read from the database once, and again only when a token
    names one this process has not seen (made by another process since)."""

    missing_key = (
        "it was encrypted with a key that is neither in BYOK['ENCRYPTION_KEYS'] "
        "nor a stored data key"
    )

    def __init__(
        self,
        local: Sequence[EncryptionKey],
        kms: KmsBackend,
        *,
        kms_key: str,
        encrypt_with_kms: bool,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        if not encrypt_with_kms and not local:
            raise ImproperlyConfigured(
                'BYOK["KEYRING"] is "local" but BYOK["ENCRYPTION_KEYS"] is empty.'
            )
        self._local: dict[str, EncryptionKey] = {}
        for key in local:
            self._local.setdefault(key.id, key)
        self.kms = kms
        self.kms_key = kms_key
        self.encrypt_with_kms = encrypt_with_kms
        self.cache_seconds = cache_seconds
        self._wrapped: dict[str, _Wrapped] | None = None  # newest first
        self._unwrapped: dict[str, tuple[EncryptionKey, float]] = {}
        self._lock = threading.Lock()

    # -- the keyring's interface --------------------------------------------------------

    @property
    def primary(self) -> EncryptionKey:
        if not self.encrypt_with_kms:
            return next(iter(self._local.values()))
        return self._current_data_key()

    @property
    def ids(self) -> list[str]:
        """The primary's id first (none yet if the KMS has made no data key: asking for
        the ids never makes one), then every other key's."""
        if self.encrypt_with_kms:
            current = [
                i for i, entry in self._data_keys().items() if entry.kms_key == self.kms_key
            ]
            first = current[:1]
        else:
            first = [self.primary.id]
        others = [*self._local, *self._data_keys()]
        return [*first, *dict.fromkeys(i for i in others if i not in first)]

    def key(self, encryption_key_id: str) -> EncryptionKey | None:
        local = self._local.get(encryption_key_id)
        if local is not None:
            return local
        cached = self._unwrapped.get(encryption_key_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        if encryption_key_id not in self._data_keys():
            self._wrapped = None  # made by another process since: read them again
            if encryption_key_id not in self._data_keys():
                return None
        return self._unwrap(encryption_key_id)

    @sensitive_variables()
    def fingerprints(self, material: bytes) -> list[str]:
        keys = [*self._local.values(), *(self._unwrap(i) for i in self._data_keys())]
        return [key.fingerprint(material) for key in keys]

    # -- data keys ----------------------------------------------------------------------

    def _data_keys(self) -> dict[str, _Wrapped]:
        wrapped = self._wrapped
        if wrapped is None:
            rows = DataKey.objects.order_by("-created_at", "id").values_list(
                "id", "wrapped", "kms_key"
            )
            wrapped = {
                key_id: _Wrapped(base64.b64decode(blob), kms_key) for key_id, blob, kms_key in rows
            }
            self._wrapped = wrapped
        return wrapped

    def _current_data_key(self) -> EncryptionKey:
        current = self._current_id()
        if current is None:
            with self._lock:  # one new data key, however many threads ask at once
                current = self._current_id()
                if current is None:
                    return self._new_data_key()
        return self._unwrap(current)

    def _current_id(self) -> str | None:
        """The newest stored data key the configured KMS key wraps, if any."""
        for key_id, entry in self._data_keys().items():
            if entry.kms_key == self.kms_key:
                return key_id
        return None

    @sensitive_variables()
    def _new_data_key(self) -> EncryptionKey:
        plaintext, wrapped = self.kms.generate_data_key()
        key = EncryptionKey(plaintext)
        DataKey.objects.get_or_create(
            id=key.id,
            defaults={"wrapped": base64.b64encode(wrapped).decode(), "kms_key": self.kms_key},
        )
        self._wrapped = {key.id: _Wrapped(wrapped, self.kms_key), **self._data_keys()}
        self._unwrapped[key.id] = (key, time.monotonic() + self.cache_seconds)
        return key

    @sensitive_variables()
    def _unwrap(self, encryption_key_id: str) -> EncryptionKey:
        cached = self._unwrapped.get(encryption_key_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            plaintext = self.kms.decrypt(self._data_keys()[encryption_key_id].wrapped)
        except KmsError as error:
            raise DecryptionError(encryption_key_id, reason=str(error)) from None
        key = EncryptionKey(plaintext)
        if key.id != encryption_key_id:
            raise DecryptionError(encryption_key_id, reason="the KMS returned another data key")
        self._unwrapped[encryption_key_id] = (key, time.monotonic() + self.cache_seconds)
        return key


@sensitive_variables()
def envelope_keyring(local: list[EncryptionKey], options: Mapping[str, Any], mode: str) -> Keyring:
    """The keyring for ``BYOK["KMS"]`` (``options``) and ``BYOK["KEYRING"]`` (``mode``)."""
    return EnvelopeKeyring(
        local,
        backend_for(options),
        kms_key=str(options["KEY_ID"]),
        encrypt_with_kms=mode == "kms",
        cache_seconds=float(options.get("CACHE_SECONDS", DEFAULT_CACHE_SECONDS)),
    )


crypto.envelope_keyring = envelope_keyring


@dataclass
class RewrapReport:
    rewrapped: int
    kms_key: str


def rewrap_data_keys() -> RewrapReport:
    """Wrap every stored data key again under the configured KMS key (after rotating
    that key, or to move to another one); no secret is re-encrypted."""
    keyring = get_keyring()
    if not isinstance(keyring, EnvelopeKeyring):
        raise ImproperlyConfigured('Re-wrapping data keys needs BYOK["KMS"].')
    done = 0
    for row in DataKey.objects.order_by("created_at", "id"):
        wrapped = keyring.kms.rewrap(base64.b64decode(row.wrapped))
        row.wrapped = base64.b64encode(wrapped).decode()
        row.kms_key = keyring.kms_key
        row.rewrapped_at = timezone.now()
        row.save(update_fields=["wrapped", "kms_key", "rewrapped_at"])
        done += 1
    reset_keyring()
    return RewrapReport(done, keyring.kms_key)
