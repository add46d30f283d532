"""Writing the audit trail. Callers pass ids, names and counts: never a secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from byok.models import AuditEvent, UserAPIKey


def record(
    action: str,
    *,
    key: UserAPIKey | None = None,
    owner: Any = None,
    actor: Any = None,
    service: str = "",
    request: HttpRequest | None = None,
    **metadata: Any,
) -> AuditEvent:
    """Append one event. Owner and service default to the key's."""
    from byok.models import AuditEvent

    if key is not None:
        owner = owner if owner is not None else key.user_id
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
        actor_id=getattr(actor, "pk", actor),
        service=service,
        ip_address=ip_address,
        user_agent=user_agent,
        metadata=metadata,
    )
