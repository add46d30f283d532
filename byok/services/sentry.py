"""Sentry: one user or organization auth token."""

from byok.services.base import Service


class Sentry(Service):
    id = "sentry"
    name = "Sentry"
    category = "developer"
    key_prefixes = ("sntryu_", "sntrys_")
