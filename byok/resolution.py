"""Finding the key that serves a call: the user's, else the platform's.

:func:`resolve_api_key` runs on every call a host makes to a provider: one query
(:func:`byok.lookup.find`, which also reads the user's budgets), one decryption, no
write. A key over a blocking budget is refused with
:class:`~byok.exceptions.BudgetExceeded` before anything is decrypted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NamedTuple, cast

from asgiref.sync import sync_to_async
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from byok import budgets, teams
from byok.budgets import Hold
from byok.conf import conf
from byok.crypto import binding
from byok.exceptions import DecryptionError, NoAPIKey
from byok.fields import SealedCredentials
from byok.lookup import BudgetRow, Found, find
from byok.models import AppliesTo, Environment, Owner, UserAPIKey
from byok.services.base import Service
from byok.services.registry import registry
from byok.signals import key_used

Source = Literal["user", "team", "platform"]
#: What budgets call each source: whose money a call spends.
SPENDS = {"user": AppliesTo.OWN, "team": AppliesTo.TEAM, "platform": AppliesTo.PLATFORM}


@dataclass(frozen=True)
class ResolvedKey:
    """The credential that serves a call, and whose it is.

    ``source`` is ``user`` (the user's own key), ``team`` (the key of the team
    ``team_id``) or ``platform``. ``budgets`` are the budgets as the lookup read them
    (metering adds to them without reading them again); ``hold``, the money
    :func:`byok.reserve` set aside for the call.
    """

    value: str | dict[str, str] = field(repr=False)
    source: Source
    service: str
    environment: str
    key_id: uuid.UUID | None = None
    budgets: tuple[BudgetRow, ...] = field(default=(), repr=False)
    hold: Hold | None = field(default=None, repr=False)
    team_id: Any = None

    @cached_property
    def key(self) -> UserAPIKey | None:
        """The key's row (one query, on first access); ``None`` for the platform's."""
        return None if self.key_id is None else UserAPIKey.objects.get(pk=self.key_id)

    @property
    def spends(self) -> str:
        """Whose money a call spends, as budgets count it: ``own``, ``team`` or ``platform``."""
        return SPENDS[self.source]


@sensitive_variables()
def resolve_api_key(
    user: Any,
    service: str,
    *,
    environment: str | None = None,
    fallback: bool = True,
    team: Any = None,
) -> ResolvedKey:
    """The key that serves ``user``'s call to ``service``: by default the user's own
    key, else the key of ``team`` (or of the team ``BYOK["CURRENT_TEAM"]`` picks) if
    the user is a member, else the platform's (``BYOK["RESOLUTION_ORDER"]``). A team
    that requires its key for the service gets it and nothing else.

    One query and one decryption; no writes. Raises :class:`~byok.exceptions.NoAPIKey`
    when no key may serve (also when the user chose "always use my key" and has none),
    and its subclass :class:`~byok.exceptions.BudgetExceeded` when the key that would
    serve is over a blocking budget (a budget on the platform's key never stops the
    user's own key, and byok never switches keys to get round a budget).
    """
    definition = registry.get(service)
    environment = Environment.resolve(environment)
    found = None
    if user is not None and user.is_authenticated:
        team = team if team is not None else teams.current_team(user)
        found = find(user.pk, service, environment, timezone.now(), teams.team_pk(team))
    choice = choose(found, service, fallback=fallback)
    if choice.source is None:
        raise NoAPIKey(service, fallback_refused=choice.refused)
    rows = () if found is None else found.budgets
    _refuse_if_over_budget(user, service, rows, SPENDS[choice.source], choice.team_id)
    resolved = _resolved(definition, choice, environment, rows, user)
    key_used.send(
        sender=UserAPIKey,
        user=user,
        service=service,
        environment=environment,
        source=resolved.source,
        key_id=resolved.key_id,
    )
    return resolved


class Choice(NamedTuple):
    """Whose key serves (``source`` ``None``: none may), and whether the platform's was
    refused (the user's "always use my key", or a team's required key)."""

    source: Source | None
    sealed: SealedCredentials | None = None
    key_id: uuid.UUID | None = None
    team_id: Any = None
    refused: bool = False


def choose(found: Found | None, service: str, *, fallback: bool = True) -> Choice:
    """The first source in ``BYOK["RESOLUTION_ORDER"]`` that can serve, from what the
    lookup read; a team that requires its key allows nothing else."""
    slot = None if found is None else found.slot
    team_slot = None if found is None else found.team_slot
    required = team_slot is not None and team_slot.required
    refused = required or (slot is not None and not slot.allow_platform_fallback)
    order = cast("Sequence[Source]", ("team",) if required else conf.RESOLUTION_ORDER)
    for source in order:
        if source == "user" and slot is not None and slot.credentials is not None:
            return Choice(source, slot.credentials, slot.key_id, None, refused)
        if source == "team" and team_slot is not None and team_slot.credentials is not None:
            return Choice(
                source, team_slot.credentials, team_slot.key_id, team_slot.team_id, refused
            )
        if source == "platform" and fallback and not refused and service in conf.PLATFORM_KEYS:
            return Choice(source, refused=refused)
    return Choice(None, refused=refused)


@sensitive_variables()
def _resolved(
    definition: Service,
    choice: Choice,
    environment: str,
    rows: tuple[BudgetRow, ...],
    user: Any,
) -> ResolvedKey:
    assert choice.source is not None
    if choice.sealed is None:
        credentials = definition.normalize(conf.PLATFORM_KEYS[definition.id])
    else:
        try:
            owner = Owner.team(choice.team_id) if choice.source == "team" else Owner.user(user)
            row = binding(choice.key_id, owner.label, definition.id)
            credentials = choice.sealed.open(binding=row)
        except DecryptionError as error:
            raise error.for_row(choice.key_id) from None
    value = definition.present(credentials)
    return ResolvedKey(
        value, choice.source, definition.id, environment, choice.key_id, rows, None, choice.team_id
    )


def _refuse_if_over_budget(
    user: Any, service: str, rows: tuple[BudgetRow, ...], spends: str, team_pk: Any
) -> None:
    over = budgets.over_budget(rows, service, spends)
    if over is not None:
        budgets.record_block(over, user, service, team_pk)
        raise over.exceeded(service)


def get_user_api_key(
    user: Any,
    service: str,
    *,
    environment: str | None = None,
    fallback: bool = True,
    team: Any = None,
) -> str | dict[str, str]:
    """The credential to use for ``service``: a string, or a dict for multi-field services."""
    resolved = resolve_api_key(
        user, service, environment=environment, fallback=fallback, team=team
    )
    return resolved.value


aresolve_api_key = sync_to_async(resolve_api_key)
aget_user_api_key = sync_to_async(get_user_api_key)
