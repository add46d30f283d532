"""Services users can store credentials for. See :mod:`byok.services.registry`."""

from byok.services.base import CATEGORIES, CredentialField, Service
from byok.services.registry import registry

__all__ = ["CATEGORIES", "CredentialField", "Service", "registry"]
