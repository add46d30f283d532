"""Testing a credential against its provider: one cheap, read-only request.

:func:`test_credentials` checks the format first (a malformed credential is never
sent); :func:`probe` sends what the service declares through :class:`~byok.http.ProbeClient`
and applies the rules that hold for every service, such as "a busy provider never
calls a key invalid".
"""

from __future__ import annotations

from dataclasses import replace

from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from byok.conf import conf
from byok.http import ProbeClient, Unreachable
from byok.jsonsafe import JSONTooDeep
from byok.results import ProbeResult, ProbeStatus
from byok.services.base import Service
from byok.services.registry import registry
from byok.validation import ValidationResult, validate_credentials

__all__ = ["ProbeResult", "ProbeStatus", "probe", "test_credentials"]


def probe_client(service: Service) -> ProbeClient:
    """A client for ``service``'s API: ``BYOK["BASE_URLS"]`` if set, else its own base URL."""
    configured = conf.BASE_URLS.get(service.id)
    return ProbeClient(
        service.id, str(configured or service.base_url), overridden=configured is not None
    )


def never_invalid_when_busy(result: ProbeResult) -> ProbeResult:
    """A 429 or a 5xx says nothing about the key: it is never reported as invalid."""
    if result.status is not ProbeStatus.INVALID or result.http_status is None:
        return result
    if result.http_status == 429:
        return replace(result, status=ProbeStatus.RATE_LIMITED)
    if result.http_status >= 500:
        return replace(result, status=ProbeStatus.PROVIDER_ERROR)
    return result


@sensitive_variables()
def test_credentials(
    service: str, credentials: object, *, environment: str | None = None
) -> ProbeResult:
    """Check the format, then test ``credentials`` against the provider. Stores nothing.

    A malformed credential is never sent (``format_invalid``). Format warnings
    are included in the result's ``warnings``.
    """
    checked = validate_credentials(service, credentials, environment=environment)
    if not checked.ok:
        return ProbeResult(
            ProbeStatus.FORMAT_INVALID, " ".join(checked.errors), warnings=checked.warnings
        )
    return probe(checked)


test_credentials.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


@sensitive_variables()
def probe(checked: ValidationResult) -> ProbeResult:
    """Test credentials that passed :func:`~byok.validate_credentials`."""
    service = registry.get(checked.service)
    try:
        result = service.probe(checked, probe_client(service))
    except Unreachable as error:
        result = ProbeResult(ProbeStatus.UNREACHABLE, str(error))
    except JSONTooDeep:
        result = ProbeResult(
            ProbeStatus.PROVIDER_ERROR,
            _(
                "The provider answered with JSON nested too deeply to read; "
                "the key was not judged."
            ),
        )
    result = never_invalid_when_busy(result)
    return replace(result, warnings=[*checked.warnings, *result.warnings])
