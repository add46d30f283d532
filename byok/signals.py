"""Signals byok sends. ``sender`` is :class:`byok.models.UserAPIKey` (``notification``:
:class:`byok.models.Notification`).

Receivers get keyword arguments only; none of them is ever a secret.
"""

from django.dispatch import Signal

#: A key was stored. ``key``, ``actor``.
key_added = Signal()
#: A key's settings or secret changed. ``key``, ``actor``, ``fields`` (names).
key_updated = Signal()
#: A key was deleted (its secret erased). ``key``, ``actor``.
key_removed = Signal()
#: A stored key's plaintext was shown to its owner. ``key``, ``actor``.
key_revealed = Signal()
#: A stored key was tested against its provider. ``key``, ``actor``, ``result``
#: (a :class:`byok.results.ProbeResult`).
key_tested = Signal()
#: Spend on a budget reached one of its alert thresholds, once per budget, period and
#: threshold. ``budget`` (a :class:`byok.models.Budget`), ``user`` (``None`` on a
#: team's budget), ``team`` (``None`` on a user's own), ``threshold`` (percent),
#: ``spent`` and ``limit`` (USD ``Decimal``s), ``period_start``.
budget_threshold_reached = Signal()
#: A blocking budget refused a call for the first time in its period (once per budget
#: and period). ``budget_id``, ``user`` (whose call it was), ``team_id`` (the team
#: whose key would have served, or ``None``), ``service``, ``spent`` and ``limit``
#: (USD ``Decimal``s), ``period_start``, ``resets_at``.
budget_blocked = Signal()
#: Host code was handed a credential. ``user``, ``service``, ``environment``,
#: ``source`` ("user", "team" or "platform"), ``key_id`` (None for the platform's key).
key_used = Signal()
#: A notification is being delivered (before its e-mail is sent). ``sender`` is
#: :class:`byok.models.Notification`; ``user``, ``kind`` (a
#: :class:`byok.models.NotificationKind` value), ``key`` (or None), ``context`` (what
#: the message says: names, dates, never a secret), ``notification`` (the row).
notification = Signal()
