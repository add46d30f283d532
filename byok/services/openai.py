"""OpenAI: one API key (user, project or service-account), tested with ``GET /models``."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.probes import ProbeStatus
from byok.services.base import CredentialField, ProbeRequest, Service, bearer
from byok.services.formats import Format

if TYPE_CHECKING:
    from byok.probes import ProbeResponse, ProbeResult
    from byok.services.formats import FormatReport
    from byok.validation import ValidationResult


class OpenAI(Service):
    id = "openai"
    name = "OpenAI"
    category = "ai"
    description = _("GPT models for chat, reasoning, images, embeddings and speech.")
    icon = "byok/icons/openai.svg"
    docs_url = "https://platform.openai.com/docs/api-reference"
    create_key_url = "https://platform.openai.com/api-keys"
    pricing = _("Pay as you go, per token; the price depends on the model.")
    free_tier = _("No free API tier: you add prepaid credit to your account.")
    setup_minutes = 3
    popular = True
    benefits = (
        _("Your own rate limits, not a share of the platform's"),
        _("Usage billed straight to your OpenAI account"),
        _("Every model your organization can use"),
        _("Prompts stay under your own data controls"),
    )
    setup_steps = (
        _("Sign in at platform.openai.com."),
        _("Open “API keys” and choose “Create new secret key”."),
        _("Pick the project, give the key a name and copy it: it is shown once."),
        _("Paste it here and choose “Add & test key”."),
    )
    fields = (
        CredentialField(
            "api_key",
            _("API key"),
            env=("OPENAI_API_KEY",),
            help_text=_("Starts with sk-proj-, sk-svcacct- or sk-."),
        ),
    )
    key_prefixes = ("sk-proj-", "sk-svcacct-", "sk-")
    formats = {
        "api_key": Format(
            loose=r"sk-(?!admin-)[A-Za-z0-9_-]{40,250}",
            strict=r"sk-(?:(?:proj|svcacct)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
            shape=_("sk- followed by 40 to 250 letters, digits, - or _"),
            strict_note=_(
                "The OpenAI key does not have the usual shape of a user, project or "
                "service-account key: check that it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0.002")
    base_url = "https://api.openai.com/v1"

    def check(
        self, credentials: dict[str, str], report: FormatReport, environment: str | None
    ) -> None:
        if credentials["api_key"].startswith("sk-admin-"):
            report.error(
                "api_key",
                _(
                    "This is an OpenAI admin key, which manages the organization; "
                    "create a project API key instead."
                ),
            )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        return ProbeRequest("GET", "/models", headers=bearer(checked.credentials["api_key"]))

    def read_answer(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        error = response.json_dict().get("error")
        error = error if isinstance(error, dict) else {}
        message, code = str(error.get("message", "")), error.get("code")
        if response.status == 401 and (
            "Missing scopes" in message or "insufficient permissions" in message
        ):
            return self.result(
                ProbeStatus.RESTRICTED,
                response,
                gettext(
                    "OpenAI accepted the key, but it is restricted and cannot read the model list "
                    "(give it the “Models: Read” permission to let byok check it)."
                ),
            )
        if response.status == 401 and "IP not authorized" in message:
            return self.result(
                ProbeStatus.RESTRICTED,
                response,
                gettext(
                    "OpenAI accepted the key, but the project's IP allowlist blocks this server."
                ),
            )
        if response.status == 429 and code == "insufficient_quota":
            return self.result(
                ProbeStatus.RESTRICTED,
                response,
                gettext("OpenAI accepted the key, but the account has no credit left."),
            )
        if response.status == 403 and "not supported" in message:
            return self.result(
                ProbeStatus.PROVIDER_ERROR,
                response,
                gettext(
                    "OpenAI does not serve the country this server is in; the key was not judged."
                ),
            )
        return self.classify(response)
