"""GitHub: one personal access token (classic or fine-grained), tested with ``GET /user``."""

from __future__ import annotations

import re
import zlib
from decimal import Decimal

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from byok.http import ProbeResponse
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import Answer
from byok.services.auth import Bearer
from byok.services.base import CredentialField, ProbeRequest, Service
from byok.services.formats import Caution, Format, FormatReport, ValidationResult

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: A 40-character prefixed token: its last 6 characters are a checksum of the 30 before.
_CHECKSUMMED = re.compile(r"gh[pousr]_[A-Za-z0-9]{36}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: The error code :meth:`GitHub.error_code` reads from a rate-limited answer's headers.
RATE_LIMITED = "rate_limited"

#: Prefixes of GitHub tokens that are not personal access tokens, and what they are.
NOT_PERSONAL = {
    "gho_": _("an OAuth app token"),
    "ghu_": _("a GitHub App user token"),
    "ghs_": _("a GitHub App installation token"),
    "ghr_": _("a GitHub App refresh token"),
}


def checksum(body: str) -> str:
    """GitHub's token checksum: the CRC32 of ``body`` in base62, six characters wide."""
    crc, digits = zlib.crc32(body.encode()), ""
    while crc:
        crc, digit = divmod(crc, 62)
        digits = _BASE62[digit] + digits
    return digits.rjust(6, "0")


class GitHub(Service):
    id = "github"
    name = "GitHub"
    category = "developer"
    description = _("Repositories, issues, pull requests and workflows, through GitHub's API.")
    icon = "byok/icons/github.svg"
    docs_url = "https://docs.github.com/en/rest"
    create_key_url = "https://github.com/settings/personal-access-tokens/new"
    pricing = _("The API comes with every GitHub plan, free ones included.")
    free_tier = _("Free to use, within GitHub's hourly rate limits for each token.")
    setup_minutes = 3
    popular = True
    benefits = (
        _("Your own API rate limit, not a shared one"),
        _("Access to just the repositories you choose"),
        _("Changes made in your name, in your history"),
        _("Revoke the token on GitHub at any time"),
    )
    setup_steps = (
        _("Sign in to GitHub and open Settings → Developer settings."),
        _("Under “Personal access tokens”, generate a new fine-grained token."),
        _(
            "Choose the repositories, permissions and expiry, then copy the token: it is "
            "shown once."
        ),
    )
    fields = (
        CredentialField(
            "api_key",
            _("Personal access token"),
            env=("GITHUB_TOKEN", "GH_TOKEN"),
            help_text=_("Starts with github_pat_ (fine-grained) or ghp_ (classic)."),
        ),
    )
    key_prefixes = ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_")
    formats = {
        "api_key": Format(
            # No upper length bound: GitHub warned integrators that tokens grow, and its
            # new installation tokens (ghs_) are long JWTs with dots.
            loose=(
                r"(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{36,}|ghs_[A-Za-z0-9._-]{36,}"
                r"|[0-9a-f]{40}"
            ),
            strict=(
                r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"
                r"|[0-9a-f]{40}"
            ),
            shape=_(
                "a GitHub token: github_pat_ or ghp_ followed by at least 36 letters, digits or _"
            ),
            strict_note=_(
                "The GitHub token does not have the usual length of a classic (ghp_) or "
                "fine-grained (github_pat_) token: check that it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0")
    #: GitHub Enterprise Server: set ``BYOK["BASE_URLS"]["github"]`` to ``https://HOST/api/v3``.
    base_url = "https://api.github.com"
    authentication = Bearer()
    #: Tokens with an expiry date carry it in every answer (classic and fine-grained).
    expiry_header = "github-authentication-token-expiration"

    cautions = (
        Caution(
            "api_key",
            r"[0-9a-f]{40}",
            _(
                "This is an old-format GitHub token (40 hex characters, from before 2021). "
                "It may still work, but GitHub can no longer spot it if it leaks: create a "
                "new token."
            ),
        ),
    )
    error_message_at = "message"
    answers = (
        Answer(
            401,
            ProbeStatus.INVALID,
            _("GitHub rejected the token: it is wrong, expired or revoked (HTTP 401)."),
            html=True,
        ),
        Answer((403, 429), ProbeStatus.RATE_LIMITED, code=RATE_LIMITED, html=True),
        Answer((403, 429), ProbeStatus.RATE_LIMITED, says="rate limit"),
        # After repeated bad tokens GitHub refuses every attempt for a while, valid
        # tokens included: a 403 here says nothing about this token.
        Answer(
            403,
            ProbeStatus.PROVIDER_ERROR,
            _(
                "GitHub refused the request without judging the token (it does so for a "
                "while after repeated failed attempts); try again later."
            ),
            html=True,
        ),
    )

    def check(
        self, credentials: dict[str, str], report: FormatReport, environment: str | None
    ) -> None:
        token = credentials.get("api_key", "")
        kind = NOT_PERSONAL.get(token[:4])
        if kind is not None:
            report.warn(
                gettext(
                    "This is %(kind)s, not a personal access token: it acts for an app and "
                    "may stop working within hours. Create a personal access token instead."
                )
                % {"kind": kind}
            )
        if _CHECKSUMMED.fullmatch(token) and checksum(token[4:-6]) != token[-6:]:
            report.warn(
                _(
                    "The GitHub token's built-in checksum does not match: a character was "
                    "probably mistyped or lost when it was copied."
                )
            )

    def probe_request(self, checked: ValidationResult) -> ProbeRequest:
        return ProbeRequest(
            "GET",
            "/user",
            headers={
                **self.credential_headers(checked.credentials),
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )

    def error_code(self, response: ProbeResponse) -> str:
        """GitHub says "rate limited" in headers: no requests left, or "retry after"."""
        if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
            return RATE_LIMITED
        return RATE_LIMITED if "retry-after" in response.headers else ""

    def read_accepted(self, response: ProbeResponse, checked: ValidationResult) -> ProbeResult:
        return self.result(ProbeStatus.VALID, response, warnings=expiry_warnings(response))


def expiry_warnings(response: ProbeResponse) -> list[str]:
    """When the token expires, from the header GitHub adds for tokens that do."""
    header = response.headers.get("github-authentication-token-expiration")
    if header is None:
        return []
    date = _DATE.match(header.strip())
    if date is None:
        return [gettext("This GitHub token has an expiry date: replace it before then.")]
    return [
        gettext("This GitHub token expires on %(date)s: replace it before then.")
        % {"date": date.group()}
    ]
