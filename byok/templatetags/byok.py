"""``{% load byok %}``: the settings card, and small helpers for byok's templates."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.base import Message

from byok.budget_bars import budget_bars, platform_allowance
from byok.conf import conf
from byok.services.registry import registry
from byok.stats import keys_per_service

register = template.Library()


@register.inclusion_tag("byok/settings_section.html", takes_context=True)
def byok_settings_section(context: template.Context) -> dict[str, Any]:
    """The "API Keys (BYOK)" section for a host's settings page, with what is left of
    the site's allowance on its own key. Two queries."""
    request = context.get("request")
    user = getattr(request, "user", None) or AnonymousUser()
    connected = 0
    allowance = platform_allowance(budget_bars(user))
    if user.is_authenticated:
        connected = sum(
            1
            for service_id, counts in keys_per_service(user).items()
            if counts["active"] and service_id in registry
        )
    return {
        "connected": connected,
        "allowance": allowance,
        "available": len(registry.all()),
        "byok_base_template": conf.BASE_TEMPLATE,
    }


@register.simple_tag(takes_context=True)
def byok_messages(context: template.Context) -> list[Message]:
    """The messages byok's pages show as toasts, per ``BYOK["RENDER_MESSAGES"]``.

    Iterating Django's message storage marks it used, so under ``"auto"`` a host
    layout that rendered the messages above the ``content`` block has shown them,
    and byok does not show them a second time.
    """
    storage = context.get("messages")
    setting = conf.RENDER_MESSAGES
    if not storage or setting is False:
        return []
    if setting == "auto" and getattr(storage, "used", False):
        return []
    return list(storage)


@register.filter
def byok_for_key(url_template: str, key_id: object) -> str:
    """The REST API URL template with this key's id filled in."""
    return url_template.replace("{id}", str(key_id))
