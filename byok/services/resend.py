"""Resend: one API key."""

from byok.services.base import Service


class Resend(Service):
    id = "resend"
    name = "Resend"
    category = "email"
    key_prefixes = ("re_",)
