"""Anthropic: one API key."""

from byok.services.base import Service


class Anthropic(Service):
    id = "anthropic"
    name = "Anthropic"
    category = "ai"
    key_prefixes = ("sk-ant-api03-", "sk-ant-")
