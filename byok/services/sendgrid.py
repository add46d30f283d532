"""Twilio SendGrid: one API key."""

from byok.services.base import Service


class SendGrid(Service):
    id = "sendgrid"
    name = "SendGrid"
    category = "email"
    key_prefixes = ("SG.",)
