"""Writing the audit trail. Callers pass ids, names and counts: never a secret.

Every event says which entry point it came through (``metadata["via"]``): ``admin``,
``api`` or ``page`` from the URL that served the request, the name a command set with
:func:`source`, or ``python`` for a direct call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from byok.models import AuditEvent, UserAPIKey

if TYPE_CHECKING:
    from django.http import HttpRequest

_source: ContextVar[str] = ContextVar("byok_audit_source", default="")

#: URL namespaces of byok's entry points, and the name each gets in the trail.
_NAMESPACES = {"admin": "admin", "byok_api": "api", "byok": "page"}


@contextmanager
def source(name: str) -> Iterator[None]:
    """Mark the events written inside the block as coming from ``name``."""
    token = _source.set(name)
    try:
        yield
    finally:
        _source.reset(token)


def _via(request: HttpRequest | None) -> str:
    if name := _source.get():
        return name
    if request is None:
        return "python"
    match = getattr(request, "resolver_match", None)
    for namespace in getattr(match, "namespaces", ()):
        if namespace in _NAMESPACES:
            return _NAMESPACES[namespace]
    return "request"


def record(
    action: str,
    *,
    key: UserAPIKey | None = None,
    owner: Any = None,
    team: Any = None,
    actor: Any = None,
    service: str = "",
    request: HttpRequest | None = None,
    **metadata: Any,
) -> AuditEvent:
    """Append one event. Owner (a user), team and service default to the key's."""
    if key is not None:
        owner = owner if owner is not None else key.user_id
        team = team if team is not None else key.team_id
        service = service or key.service
    ip_address, user_agent = None, ""
    if request is not None:
        ip_address = request.META.get("REMOTE_ADDR") or None
        user_agent = request.headers.get("User-Agent", "")[:255]
        if actor is None and request.user.is_authenticated:
            actor = request.user
    return AuditEvent.objects.create(
        action=action,
        key=key,
        owner_id=getattr(owner, "pk", owner),
        team_id=getattr(team, "pk", team),
        actor_id=getattr(actor, "pk", actor),
        service=service,
        ip_address=ip_address,
        user_agent=user_agent,
        metadata={**metadata, "via": _via(request)},
    )
