"""How old a key is, whether it was used lately and when it expires: what the
dashboard's badges, the REST API's fields and the reminders all read.

AWS reports each access key's age and last use, and GitHub warns before a token
expires; byok does the same for the keys its users store. The thresholds are
``BYOK["EXPIRY_REMINDER_DAYS"]`` (the largest one is "expires soon"),
``BYOK["ROTATION_REMINDER_DAYS"]`` and ``BYOK["UNUSED_REMINDER_DAYS"]`` (both off
by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from byok.conf import conf
from byok.models import UserAPIKey

#: The codes of :attr:`KeyAge.reminders`, most urgent first.
EXPIRED = "expired"
EXPIRES_SOON = "expires_soon"
ROTATION_DUE = "rotation_due"
UNUSED = "unused"


@dataclass(frozen=True)
class Badge:
    code: str
    text: str
    #: ``danger`` (expired), ``warning`` or ``info``: the class the page gives it.
    level: str


@dataclass(frozen=True)
class KeyAge:
    """Ages in whole days, at one moment."""

    age_days: int
    secret_age_days: int
    #: Days since last use (since it was stored, if it never was).
    unused_days: int
    ever_used: bool
    expires_at: datetime | None
    #: Whole days left before the expiry (negative once past); ``None``: not known.
    expires_in_days: int | None

    @property
    def reminders(self) -> list[str]:
        """What deserves the owner's attention now, as codes."""
        found = []
        if self.expires_in_days is not None and self.expires_at is not None:
            if self.expires_at <= timezone.now():
                found.append(EXPIRED)
            elif conf.EXPIRY_REMINDER_DAYS and self.expires_in_days <= max(
                conf.EXPIRY_REMINDER_DAYS
            ):
                found.append(EXPIRES_SOON)
        rotation = conf.ROTATION_REMINDER_DAYS
        if rotation is not None and self.secret_age_days > rotation:
            found.append(ROTATION_DUE)
        unused = conf.UNUSED_REMINDER_DAYS
        if unused is not None and self.unused_days >= unused:
            found.append(UNUSED)
        return found

    @property
    def badges(self) -> list[Badge]:
        """:attr:`reminders` as the dashboard shows them."""
        texts = {
            EXPIRED: (_("expired"), "danger"),
            EXPIRES_SOON: (self._expires_text(), "warning"),
            ROTATION_DUE: (_("older than your rotation policy"), "warning"),
            UNUSED: (self._unused_text(), "info"),
        }
        return [Badge(code, *texts[code]) for code in self.reminders]

    def _expires_text(self) -> str:
        days = self.expires_in_days or 0
        if days <= 0:
            return _("expires today")
        return ngettext("expires in %(days)d day", "expires in %(days)d days", days) % {
            "days": days
        }

    def _unused_text(self) -> str:
        days = self.unused_days
        if not self.ever_used:
            return ngettext("never used in %(days)d day", "never used in %(days)d days", days) % {
                "days": days
            }
        return ngettext("unused for %(days)d day", "unused for %(days)d days", days) % {
            "days": days
        }


def key_age(key: UserAPIKey, now: datetime | None = None) -> KeyAge:
    """``key``'s ages at ``now`` (default: now). No query."""
    now = now or timezone.now()
    last_use = key.last_used_at or key.created_at
    expires_in = None
    if key.expires_at is not None:
        expires_in = (key.expires_at - now).days
    return KeyAge(
        age_days=max((now - key.created_at).days, 0),
        secret_age_days=max((now - key.secret_changed_at).days, 0),
        unused_days=max((now - last_use).days, 0),
        ever_used=key.last_used_at is not None,
        expires_at=key.expires_at,
        expires_in_days=expires_in,
    )
