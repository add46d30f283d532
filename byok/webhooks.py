"""Signed webhooks: byok's events posted as JSON to the URLs in ``BYOK["WEBHOOKS"]``.

Each request carries ``X-Byok-Event``, ``X-Byok-Delivery`` (the event's id, the same
on every attempt), ``X-Byok-Timestamp`` (Unix seconds, of this attempt) and
``X-Byok-Signature: sha256=<hex>``: the HMAC-SHA256, keyed by the webhook's secret,
of the timestamp, a dot and the raw body (``f"{timestamp}.".encode() + body``).
:func:`verify_signature` is what a receiver runs; docs/budgets.md has the same code
needing nothing but Python's standard library.

Delivery is a task (:func:`byok.tasks.send_webhook`), one attempt per task run. A URL
is https to a public address, unless its host is in
``BYOK["WEBHOOK_ALLOWED_HOSTS"]``. The secret is read from settings at each attempt:
it is never a task argument, never in a log line, never in a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from byok.conf import conf
from byok.http import USER_AGENT, Unreachable, resolves_to_public_only

logger = logging.getLogger("byok.webhooks")

THRESHOLD_REACHED = "budget.threshold_reached"
BLOCKED = "budget.blocked"
#: The events a webhook can subscribe to.
EVENTS = (THRESHOLD_REACHED, BLOCKED)
#: Seconds to connect, and to wait for the answer.
TIMEOUT = (3.0, 5.0)
#: How old a timestamp :func:`verify_signature` accepts, in seconds (either way).
TOLERANCE = 300
#: What an entry of ``BYOK["WEBHOOKS"]`` holds.
KEYS = frozenset({"url", "secret", "events"})
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class Webhook:
    """One entry of ``BYOK["WEBHOOKS"]``."""

    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...]

    @property
    def where(self) -> str:
        """The URL without its query: what log lines name."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


# -- Settings ----------------------------------------------------------------------------


def entry_problems(entry: object) -> list[str]:
    """What is wrong with one entry of ``BYOK["WEBHOOKS"]`` (check byok.E026); never
    quotes the secret."""
    if not isinstance(entry, dict):
        return ['must be a dict with "url", "secret" and "events"']
    problems = []
    unknown = set(entry) - KEYS
    if unknown:
        problems.append(f"has unknown keys {', '.join(sorted(map(str, unknown)))}")
    url = entry.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append('"url" must be an absolute http(s) URL')
    elif parts.username or parts.password or parts.fragment:
        problems.append('"url" must not carry a user name, a password or a fragment')
    secret = entry.get("secret")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        problems.append(f'"secret" must be a string of at least {MIN_SECRET_LENGTH} characters')
    events = entry.get("events")
    if (
        not isinstance(events, list | tuple)
        or not events
        or any(event not in EVENTS for event in events)
    ):
        problems.append(f'"events" must be a non-empty list of: {", ".join(EVENTS)}')
    return problems


def url_refusal(url: str) -> str | None:
    """Why byok will not post to ``url`` as configured (checks byok.E027 and E028):
    plain http, or an address that is not public, to a host not explicitly allowed.
    A host name is resolved at delivery time, not here."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in conf.WEBHOOK_ALLOWED_HOSTS:
        return None
    if parts.scheme != "https":
        return "plain http"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if address.is_global else "a private, loopback or link-local address"


def configured() -> list[Webhook]:
    """The usable entries of ``BYOK["WEBHOOKS"]``; the others are left out (the system
    checks report them), so a bad one never fails the call that raised an event."""
    hooks = []
    for entry in conf.WEBHOOKS:
        if entry_problems(entry):
            continue
        hooks.append(Webhook(entry["url"], entry["secret"], tuple(entry["events"])))
    return hooks


def subscribed(event: str) -> list[Webhook]:
    """The webhooks that want ``event``."""
    return [hook for hook in configured() if event in hook.events]


def find(url: str, event: str) -> Webhook | None:
    """The webhook at ``url`` that still wants ``event``, if settings still name one."""
    return next((hook for hook in subscribed(event) if hook.url == url), None)


# -- Events and signatures -------------------------------------------------------------


def event(name: str, occasion: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event as posted: ``id`` is the same for every attempt and every webhook (a
    receiver can drop repeats by it), ``data`` holds strings, numbers and ``None``."""
    return {
        "id": f"{name}:{occasion}",
        "event": name,
        "created_at": timezone.now().isoformat(),
        "data": data,
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The request body: the same bytes for the same event, at every attempt."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


@sensitive_variables("secret")
def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``f"{timestamp}."`` and ``body``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


@sensitive_variables("secret")
def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature_header: str,
    *,
    tolerance: int = TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether a request came from byok: the signature matches the raw ``body`` and
    the timestamp, and the timestamp is within ``tolerance`` seconds of ``now``."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), str(signature_header).encode())


# -- Delivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed (never with a secret); ``final`` when retrying cannot help."""

    reason: str
    final: bool = False


@sensitive_variables("hook", "headers")
def post(hook: Webhook, payload: dict[str, Any]) -> Failure | None:
    """One attempt at delivering ``payload`` to ``hook``; ``None`` when it answered 2xx.
    Never follows a redirect; reads none of the answer."""
    parts = urlsplit(hook.url)
    host = (parts.hostname or "").lower()
    refusal = url_refusal(hook.url)
    if refusal is not None:
        return Failure(f"refused: {refusal}", final=True)
    if host not in conf.WEBHOOK_ALLOWED_HOSTS:
        try:
            public = resolves_to_public_only(host, parts.port or 443)
        except Unreachable:
            return Failure("host name not resolved")
        if not public:
            return Failure("refused: a private, loopback or link-local address", final=True)
    body = encode(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Byok-Event": payload["event"],
        "X-Byok-Delivery": payload["id"],
        "X-Byok-Timestamp": timestamp,
        "X-Byok-Signature": signature(hook.secret, timestamp, body),
    }
    try:
        with requests.Session() as session:
            session.trust_env = False  # no proxy or .netrc credentials from the environment
            response = session.post(
                hook.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
            response.close()
    except requests.Timeout:
        return Failure("timed out")
    except requests.RequestException:
        return Failure("connection failed")
    if 200 <= response.status_code < 300:
        return None
    return Failure(f"HTTP {response.status_code}")


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2…): doubling."""
    return float(conf.WEBHOOK_RETRY_DELAY * 2 ** (attempt - 1))
