"""Services users can store credentials for. See :mod:`byok.services.registry`.

Everything a service declaration uses can be imported from here.
"""

from byok.http import ProbeRequest, ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import ACCEPTED, Answer, Region
from byok.services.auth import Basic, Bearer, Header, QueryParameters, SigV4
from byok.services.base import CATEGORIES, CredentialField, Service, bearer
from byok.services.formats import Caution, Format, FormatReport, Refusal, ValidationResult
from byok.services.registry import registry

__all__ = [
    "ACCEPTED",
    "CATEGORIES",
    "Answer",
    "Basic",
    "Bearer",
    "Caution",
    "CredentialField",
    "Format",
    "FormatReport",
    "Header",
    "ProbeRequest",
    "ProbeResponse",
    "ProbeResult",
    "ProbeStatus",
    "QueryParameters",
    "Refusal",
    "Region",
    "Service",
    "SigV4",
    "ValidationResult",
    "bearer",
    "registry",
]
