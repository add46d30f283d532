"""Exceptions raised by byok's public helpers. None of them ever carries a secret."""

from __future__ import annotations

import warnings
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from byok.results import ProbeResult


class ByokError(Exception):
    """Base class for byok's own errors."""


class TooManyTests(ByokError):
    """The user's budget of provider calls (the ``byok_test`` rate) is spent for now."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        super().__init__(f"Too many keys tested in a short time: try again in {wait:.0f} s.")


class UnknownService(ByokError, LookupError):
    """The service id is not in the registry (or is disabled)."""

    def __init__(self, service_id: str) -> None:
        self.service_id = service_id
        super().__init__(
            f"Unknown service {service_id!r}. Registered services are listed by "
            "'manage.py byok_services'; add your own with BYOK['SERVICES']."
        )


class KmsError(ByokError, RuntimeError):
    """The KMS refused or could not be reached (:mod:`byok.kms`). Its message names the
    operation and the KMS's error code, never a key. A request that hits it is answered
    503: the site's key storage is unavailable, nothing was stored."""


class NoAPIKey(ByokError, LookupError):
    """Neither the user nor the platform has a key for the service."""

    def __init__(self, service_id: str, *, fallback_refused: bool = False) -> None:
        self.service_id = service_id
        self.fallback_refused = fallback_refused
        reason = (
            "the user has no active key and chose not to fall back to the platform's key"
            if fallback_refused
            else "the user has no active key and no platform key is configured"
        )
        super().__init__(f"No API key for {service_id!r}: {reason}.")


class BudgetExceeded(NoAPIKey):
    """The key that would serve is over a blocking budget, or a reservation does not
    fit in one: no key is handed out until the budget resets (or is raised).

    ``budget`` is the :class:`~byok.models.Budget`'s id, ``name`` what the user calls
    it, ``spent`` and ``limit`` in USD (``spent`` counts reservations in flight), and
    ``resets_at`` when its period ends.
    """

    def __init__(
        self,
        service_id: str,
        *,
        budget: int | None,
        name: str,
        spent: Decimal,
        limit: Decimal,
        resets_at: datetime,
    ) -> None:
        super().__init__(service_id)
        self.budget, self.name = budget, name
        self.spent, self.limit, self.resets_at = spent, limit, resets_at
        self.args = (
            f"No API key for {service_id!r}: the budget {name!r} is spent "
            f"({spent:.2f} of {limit:.2f} USD) until {resets_at:%Y-%m-%d %H:%M %Z}.",
        )


class DecryptionError(ByokError):
    """A stored secret cannot be decrypted with the configured keys.

    byok never returns garbage for such a row: it says which key id the row needs,
    so the operator can put the missing key back into ``BYOK['ENCRYPTION_KEYS']``.
    """

    def __init__(self, encryption_key_id: str, *, reason: str, row: object = None) -> None:
        self.encryption_key_id = encryption_key_id
        self.reason = reason
        self.row = row
        where = f"Stored API key {row}" if row is not None else "A stored secret"
        super().__init__(
            f"{where} cannot be decrypted: {reason} (encryption key id {encryption_key_id})."
        )

    @property
    def key_id(self) -> str:
        """Deprecated name of :attr:`encryption_key_id` (``key_id`` is a stored key's id)."""
        warnings.warn(
            "DecryptionError.key_id is deprecated; use encryption_key_id.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.encryption_key_id

    def for_row(self, row: object) -> DecryptionError:
        """The same error, naming the database row it came from."""
        return DecryptionError(self.encryption_key_id, reason=self.reason, row=row)


class KeyRejected(ValidationError):
    """The provider rejected the credential when it was tested before storing it.

    A ``ValidationError`` (code ``invalid_key``, under ``credentials``) that also
    carries the test's ``probe_result``.
    """

    def __init__(self, probe_result: ProbeResult) -> None:
        self.probe_result = probe_result
        super().__init__(
            {"credentials": ValidationError(probe_result.message, code="invalid_key")}
        )
