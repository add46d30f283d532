"""Services users can store credentials for. See :mod:`byok.services.registry`.

Everything a service declaration uses can be imported from here.
"""

from byok.http import ProbeRequest, ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import ACCEPTED, Answer, Region
from byok.services.base import CATEGORIES, CredentialField, Service, bearer
from byok.services.formats import Caution, Format, FormatReport, Refusal, ValidationResult
from byok.services.registry import registry

__all__ = [
    "ACCEPTED",
    "CATEGORIES",
    "Answer",
    "Caution",
    "CredentialField",
    "Format",
    "FormatReport",
    "ProbeRequest",
    "ProbeResponse",
    "ProbeResult",
    "ProbeStatus",
    "Refusal",
    "Region",
    "Service",
    "ValidationResult",
    "bearer",
    "registry",
]
