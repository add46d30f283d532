"""The encrypted credentials model field.

A loaded value is a :class:`SealedCredentials`: the ciphertext, not the secret.
Nothing is decrypted until code calls :meth:`SealedCredentials.open`, so
listing keys never decrypts, and a model instance printed in a log or an error
report shows a key id, never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.functions import Substr
from django.db.models.sql.compiler import SQLCompiler
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from byok.crypto import (
    ENCRYPTION_KEY_ID_LENGTH,
    ENCRYPTION_KEY_ID_POSITION,
    FORMAT_POSITION,
    Keyring,
    encryption_key_id_of,
    format_of,
    get_keyring,
)

#: Format 2 pads what it encrypts with spaces (JSON ignores them) to a multiple of this,
#: so that a ciphertext tells a credential's length only roughly, as format 1's did.
PADDING = 16


def canonical_bytes(credentials: Mapping[str, str]) -> bytes:
    """One byte string per credential mapping: what is encrypted and fingerprinted."""
    return json.dumps(dict(credentials), sort_keys=True, separators=(",", ":")).encode()


@sensitive_variables()
def padded(plaintext: bytes) -> bytes:
    """``plaintext`` with trailing spaces up to a multiple of :data:`PADDING`."""
    return plaintext + b" " * (-len(plaintext) % PADDING)


class SealedCredentials:
    """Encrypted credentials as stored: a token that names the key that made it."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        encryption_key_id_of(token)  # refuses anything that is not a byok ciphertext
        self.token = token

    @classmethod
    @sensitive_variables()
    def seal(
        cls, credentials: Mapping[str, str], keyring: Keyring | None = None, *, binding: bytes
    ) -> SealedCredentials:
        """Encrypt a credential mapping with the primary key, bound to its row
        (:func:`byok.crypto.binding`)."""
        plaintext = padded(canonical_bytes(credentials))
        return cls((keyring or get_keyring()).encrypt(plaintext, binding))

    @property
    def encryption_key_id(self) -> str:
        return encryption_key_id_of(self.token)

    @property
    def format(self) -> str:
        """``v1`` or ``v2``."""
        return format_of(self.token)

    @sensitive_variables()
    def open(
        self, keyring: Keyring | None = None, *, binding: bytes | None = None
    ) -> dict[str, str]:
        """Decrypt. Raises :class:`byok.exceptions.DecryptionError` if no key fits, or if
        a format 2 token is not opened with the binding of the row it was sealed in."""
        plaintext = (keyring or get_keyring()).decrypt(self.token, binding)
        credentials: dict[str, str] = json.loads(plaintext)
        return credentials

    def __repr__(self) -> str:
        return f"<SealedCredentials encryption_key_id={self.encryption_key_id}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedCredentials) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class EncryptionKeyId(models.Transform):
    """``credentials__encryption_key_id``: the id of the encryption key a stored value
    was encrypted with."""

    lookup_name = "encryption_key_id"
    output_field = models.CharField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        substring = Substr(
            self.lhs,
            ENCRYPTION_KEY_ID_POSITION,
            ENCRYPTION_KEY_ID_LENGTH,
            output_field=models.CharField(),
        )
        sql, params = compiler.compile(substring)
        return sql, tuple(params)


class EncryptionFormat(models.Transform):
    """``credentials__format``: the format digit of a stored value (``"1"`` or ``"2"``)."""

    lookup_name = "format"
    output_field = models.CharField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        substring = Substr(self.lhs, FORMAT_POSITION, 1, output_field=models.CharField())
        sql, params = compiler.compile(substring)
        return sql, tuple(params)


#: ``credentials__encryption_key_id``, and ``credentials__key_id``, its name before 0.2
#: (deprecated: ``key_id`` names a stored key's id everywhere else).
ENCRYPTION_KEY_ID_LOOKUPS = (EncryptionKeyId.lookup_name, "key_id")


if TYPE_CHECKING:
    _TextField = models.TextField[SealedCredentials | None, SealedCredentials | None]
else:
    _TextField = models.TextField


class EncryptedCredentialsField(_TextField):
    """Stores a credential mapping encrypted with byok's keyring.

    Assign a :class:`SealedCredentials` (``UserAPIKey.set_credentials`` makes one);
    a plain mapping is refused so that a display hint and fingerprint can never
    go stale. Only ``isnull``, ``encryption_key_id``, ``format`` and ciphertext equality
    can be queried.
    """

    description = _("Credentials encrypted with the byok keyring")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        # Django records ``editable`` only when it differs from its default, True;
        # this field's default is False, so record it only when it is True.
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        if self.editable:
            kwargs["editable"] = True
        return name, path, args, kwargs

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else SealedCredentials(value)

    def to_python(self, value: Any) -> SealedCredentials | None:
        if value is None or isinstance(value, SealedCredentials):
            return value
        if isinstance(value, str):  # a serialized fixture holds the ciphertext
            return SealedCredentials(value)
        raise TypeError("Encrypted credentials must be sealed; use UserAPIKey.set_credentials().")

    def get_prep_value(self, value: Any) -> str | None:
        value = self.to_python(value)
        return None if value is None else value.token

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else value.token

    def get_lookup(self, lookup_name: str) -> Any:
        # ``exact`` is how Django spells ``=None``; any other value must be a token.
        return super().get_lookup(lookup_name) if lookup_name in ("isnull", "exact") else None

    def get_transform(self, lookup_name: str) -> Any:
        if lookup_name == EncryptionFormat.lookup_name:
            return EncryptionFormat
        return EncryptionKeyId if lookup_name in ENCRYPTION_KEY_ID_LOOKUPS else None
