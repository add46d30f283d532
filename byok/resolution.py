"""Finding the key that serves a call: the user's, else the platform's.

:func:`resolve_api_key` runs on every call a host makes to a provider: one query
(:func:`byok.lookup.find`, which also reads the user's budgets), one decryption, no
write. A key over a blocking budget is refused with
:class:`~byok.exceptions.BudgetExceeded` before anything is decrypted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from byok import budgets
from byok.budgets import Hold
from byok.conf import conf
from byok.exceptions import DecryptionError, NoAPIKey
from byok.lookup import BudgetRow, find
from byok.models import AppliesTo, Environment, UserAPIKey
from byok.services.registry import registry
from byok.signals import key_used

Source = Literal["user", "platform"]


@dataclass(frozen=True)
class ResolvedKey:
    """The credential that serves a call, and whose it is.

    ``budgets`` are the user's budgets as the lookup read them (metering adds to them
    without reading them again); ``hold``, the money :func:`byok.reserve` set aside
    for the call.
    """

    value: str | dict[str, str] = field(repr=False)
    source: Source
    service: str
    environment: str
    key_id: uuid.UUID | None = None
    budgets: tuple[BudgetRow, ...] = field(default=(), repr=False)
    hold: Hold | None = field(default=None, repr=False)

    @cached_property
    def key(self) -> UserAPIKey | None:
        """The user's key row (one query, on first access); ``None`` for the platform's."""
        return None if self.key_id is None else UserAPIKey.objects.get(pk=self.key_id)

    @property
    def spends(self) -> str:
        """Whose money a call spends, as budgets count it: ``own`` or ``platform``."""
        return AppliesTo.OWN if self.source == "user" else AppliesTo.PLATFORM


@sensitive_variables()
def resolve_api_key(
    user: Any, service: str, *, environment: str | None = None, fallback: bool = True
) -> ResolvedKey:
    """The user's default active key for ``service``, else the platform's key.

    One query and one decryption when the user has a key; no writes. Raises
    :class:`~byok.exceptions.NoAPIKey` when neither exists, or when the user
    chose "always use my key" for the service and has none, and its subclass
    :class:`~byok.exceptions.BudgetExceeded` when the key that would serve is over a
    blocking budget (a budget on the platform's key never stops the user's own key).
    """
    definition = registry.get(service)
    environment = Environment.resolve(environment)
    found = None
    if user is not None and user.is_authenticated:
        found = find(user.pk, service, environment, timezone.now())
    slot = None if found is None else found.slot
    rows = () if found is None else found.budgets
    if slot is not None and slot.credentials is not None:
        _refuse_if_over_budget(user, service, rows, AppliesTo.OWN)
        try:
            credentials = slot.credentials.open()
        except DecryptionError as error:
            raise error.for_row(slot.key_id) from None
        value = definition.present(credentials)
        resolved = ResolvedKey(value, "user", service, environment, slot.key_id, rows)
    else:
        refused = slot is not None and not slot.allow_platform_fallback
        platform = conf.PLATFORM_KEYS.get(service)
        if not fallback or refused or not platform:
            raise NoAPIKey(service, fallback_refused=refused)
        _refuse_if_over_budget(user, service, rows, AppliesTo.PLATFORM)
        value = definition.present(definition.normalize(platform))
        resolved = ResolvedKey(value, "platform", service, environment, None, rows)
    key_used.send(
        sender=UserAPIKey,
        user=user,
        service=service,
        environment=environment,
        source=resolved.source,
        key_id=resolved.key_id,
    )
    return resolved


def _refuse_if_over_budget(
    user: Any, service: str, rows: tuple[BudgetRow, ...], spends: str
) -> None:
    over = budgets.over_budget(rows, service, spends, timezone.localdate())
    if over is not None:
        budgets.record_block(over, user, service)
        raise over.exceeded(service)


def get_user_api_key(
    user: Any, service: str, *, environment: str | None = None, fallback: bool = True
) -> str | dict[str, str]:
    """The credential to use for ``service``: a string, or a dict for multi-field services."""
    return resolve_api_key(user, service, environment=environment, fallback=fallback).value


aresolve_api_key = sync_to_async(resolve_api_key)
aget_user_api_key = sync_to_async(get_user_api_key)
