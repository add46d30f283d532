"""OpenAI: one API key (user, project or service-account key)."""

from byok.services.base import Service


class OpenAI(Service):
    id = "openai"
    name = "OpenAI"
    category = "ai"
    key_prefixes = ("sk-proj-", "sk-svcacct-", "sk-")
