"""What a test of a credential found: a :class:`ProbeStatus` and a :class:`ProbeResult`.

The vocabulary every layer shares (services read answers into it, keys store it as
their status, the API and the pages show it), so it depends on nothing of byok's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProbeStatus(models.TextChoices):
    """The outcome of a test. ``byok.models.KeyStatus`` is these plus ``untested``."""

    VALID = "valid", _("Valid")
    RESTRICTED = "restricted", _("Valid, restricted")
    INVALID = "invalid", _("Invalid")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    PROVIDER_ERROR = "provider_error", _("Provider error")
    UNREACHABLE = "unreachable", _("Unreachable")
    UNVERIFIABLE = "unverifiable", _("Cannot be verified")
    FORMAT_INVALID = "format_invalid", _("Malformed")


@dataclass(frozen=True)
class ProbeResult:
    """What a test found. ``ok`` means the provider accepted the credential."""

    status: ProbeStatus
    message: str
    http_status: int | None = None
    warnings: list[str] = field(default_factory=list)
    #: When the credential expires, if the provider's answer said so.
    expires_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status in (ProbeStatus.VALID, ProbeStatus.RESTRICTED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "ok": self.ok,
            "message": self.message,
            "http_status": self.http_status,
            "warnings": list(self.warnings),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
        }
