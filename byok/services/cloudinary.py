"""Cloudinary: a cloud name, an API key and its secret, tested with ``GET …/ping``.

Users often have the three as one ``CLOUDINARY_URL=cloudinary://key:secret@cloud``
line; :meth:`Cloudinary.prepare` splits it, whether pasted whole or into a field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.http import ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Basic
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Format, Refusal, ValidationResult

FIELDS = ("cloud_name", "api_key", "api_secret")

# cloudinary://<api_key>:<api_secret>@<cloud_name>, optionally followed by a path or
# query (a private CDN host, options) that byok does not need.
_URL = re.compile(
    r"(?i:cloudinary)://(?P<api_key>[^:@/?#\s]+):(?P<api_secret>[^@/?#\s]+)"
    r"@(?P<cloud_name>[^@/?#\s]+)(?:[/?#]\S*)?"
)
_ENV_PREFIX = "CLOUDINARY_URL="

URL_SHAPE = _(
    "Paste the Cloudinary URL in the form cloudinary://<api_key>:<api_secret>@<cloud_name>, "
    "or fill in the cloud name, API key and API secret separately."
)


def parse_cloudinary_url(value: str) -> dict[str, str] | None:
    """The three fields of a ``CLOUDINARY_URL`` (with or without ``CLOUDINARY_URL=``)."""
    text = value.strip()
    if text.upper().startswith(_ENV_PREFIX):
        text = text[len(_ENV_PREFIX) :].strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    match = _URL.fullmatch(text)
    if match is None:
        return None
    return {name: match[name] for name in FIELDS}


class Cloudinary(Service):
    id = "cloudinary"
    name = "Cloudinary"
    category = "storage"
    description = _("Image and video storage, transformations and delivery through a CDN.")
    icon = "byok/icons/cloudinary.svg"
    docs_url = "https://cloudinary.com/documentation/admin_api"
    create_key_url = "https://console.cloudinary.com/"
    pricing = _(
        "A free plan, then monthly plans priced in credits that cover storage, bandwidth "
        "and transformations."
    )
    free_tier = _("A free plan with a monthly allowance of credits.")
    setup_minutes = 3
    difficulty = "easy"
    benefits = (
        _("Media stored in your own Cloudinary account"),
        _("Storage and bandwidth billed to your own plan"),
        _("Your own transformations, presets and delivery settings"),
        _("Your media stays yours if you stop using this site"),
    )
    setup_steps = (
        _("Sign in at console.cloudinary.com."),
        _("Open Settings, then “API Keys”."),
        _("Copy the cloud name, the API key and its secret, or the whole CLOUDINARY_URL."),
    )
    fields = (
        CredentialField(
            "cloud_name",
            _("Cloud name"),
            env=("CLOUDINARY_CLOUD_NAME",),
            secret=False,
            help_text=_("Shown at the top of the Cloudinary console."),
        ),
        CredentialField(
            "api_key",
            _("API key"),
            env=("CLOUDINARY_API_KEY",),
            secret=False,
            help_text=_("A number, usually 15 digits."),
        ),
        CredentialField(
            "api_secret",
            _("API secret"),
            env=("CLOUDINARY_API_SECRET",),
            help_text=_(
                "Shown next to the API key. You may also paste the whole cloudinary:// URL here."
            ),
        ),
    )
    formats = {
        # The cloud name goes into the probe's URL: letters, digits, - and _ only.
        "cloud_name": Format(
            loose=r"[A-Za-z0-9][A-Za-z0-9_-]{1,63}",
            strict=r"[A-Za-z][A-Za-z0-9-]{2,49}",
            shape=_("2 to 64 letters, digits, - or _"),
            strict_note=_(
                "The Cloudinary cloud name does not have the usual shape (a letter, then "
                "letters, digits or -, 3 to 50 in all): check it in the Cloudinary console."
            ),
        ),
        "api_key": Format(
            loose=r"\d{10,20}",
            strict=r"\d{15}",
            shape=_("10 to 20 digits"),
            strict_note=_(
                "Cloudinary API keys are usually 15 digits: check that the key was copied whole."
            ),
        ),
        "api_secret": Format(
            loose=r"[A-Za-z0-9_-]{20,64}",
            strict=r"[A-Za-z0-9_-]{27}",
            shape=_("20 to 64 letters, digits, - or _"),
            strict_note=_(
                "Cloudinary API secrets are usually 27 characters: check that the secret was "
                "copied whole."
            ),
        ),
    }
    base_url = "https://api.cloudinary.com"
    authentication = Basic("api_key", "api_secret")
    env = ("CLOUDINARY_URL",)

    def prepare(self, credentials: object) -> object:
        if isinstance(credentials, str):
            parsed = parse_cloudinary_url(credentials)
            if parsed is None:
                raise ValidationError(URL_SHAPE, code="invalid")
            return parsed
        if not isinstance(credentials, Mapping):
            return credentials
        for name, value in credentials.items():
            parsed = parse_cloudinary_url(value) if isinstance(value, str) else None
            if parsed is None:
                continue
            for other in FIELDS:
                given = None if other == name else credentials.get(other)
                if isinstance(given, str) and given.strip() not in ("", parsed[other]):
                    raise ValidationError(
                        {
                            name: ValidationError(
                                _(
                                    "The pasted Cloudinary URL does not match the other "
                                    "fields; paste either the URL or the three values."
                                ),
                                code="conflict",
                            )
                        }
                    )
            return {**credentials, **parsed}
        return credentials

    refusals = tuple(
        Refusal(
            name,
            r".*://.*",
            format_lazy("{} {}", _("%(label)s holds a URL byok cannot read."), URL_SHAPE),
            code="format",
        )
        for name in FIELDS
    )
    swaps = (("api_key", "api_secret"),)
    error_message_at = "error.message"
    answers = (
        # Cloudinary's 401 says which part it blames; its message echoes values, so only
        # the part is named. Cloudinary documents HTML answers as an authentication issue too.
        Answer(
            401,
            ProbeStatus.INVALID,
            _("Cloudinary does not know this cloud name (HTTP 401)."),
            says=("cloud_name", "cloud name"),
            html=True,
        ),
        Answer(
            401,
            ProbeStatus.INVALID,
            _(
                "Cloudinary does not know this API key (HTTP 401): check that it belongs to "
                "this cloud."
            ),
            says=("api_key", "api key"),
            html=True,
        ),
        Answer(
            401,
            ProbeStatus.INVALID,
            _("Cloudinary rejected the API secret (HTTP 401)."),
            says=("api_secret", "signature"),
            html=True,
        ),
        Answer(
            401,
            ProbeStatus.INVALID,
            _("Cloudinary rejected the cloud name, API key and secret (HTTP 401)."),
            html=True,
        ),
        Answer(
            403,
            ProbeStatus.RESTRICTED,
            _(
                "Cloudinary accepted the credentials, but they are not allowed to use the "
                "Admin API (HTTP 403)."
            ),
        ),
        Answer(
            404,
            ProbeStatus.INVALID,
            _("Cloudinary knows no cloud by this name (HTTP 404): check the cloud name."),
            html=True,
        ),
        Answer((420, 429), ProbeStatus.RATE_LIMITED, html=True),
    )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        credentials = checked.credentials
        return ProbeRequest(
            "GET",
            f"/v1_1/{quote(credentials['cloud_name'], safe='')}/ping",
            auth=self.credential_basic(credentials),
        )

    def read_accepted(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        if response.json_dict().get("status") == "ok":
            return self.result(ProbeStatus.VALID, response)
        return self.result(
            ProbeStatus.PROVIDER_ERROR,
            response,
            gettext(
                "Cloudinary answered the test without its usual “ok”; the key was not judged."
            ),
        )
