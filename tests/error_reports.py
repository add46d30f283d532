"""Django's error report of a failed request, and what it must never hold.

Shared by ``test_error_reports.py`` (failures injected where a secret is handled) and
``test_protected_frames.py`` (a failure inside each protected frame of byok).
"""

import html

from django.views.debug import SafeExceptionReporterFilter

from byok.services.registry import registry

from fakes import fake_credentials
from support import windows

FAILURE = "injected failure deep inside"


class InjectedFailure(RuntimeError):
    pass


def secrets_of(service, credentials):
    """The secret values of a credential (a Twilio SID or an AWS key id may show)."""
    if isinstance(credentials, str):
        return [credentials]
    spec = registry.get(service)
    return [credentials[f.name] for f in spec.fields if f.secret and f.name in credentials]


def as_fields(credentials):
    return credentials if isinstance(credentials, dict) else {"api_key": credentials}


def env_file():
    """A ``.env`` file of two keys (OpenAI, Twilio), and its secrets."""
    openai, twilio = fake_credentials("openai"), fake_credentials("twilio")
    text = (
        f"OPENAI_API_KEY={openai}\n"
        f"TWILIO_ACCOUNT_SID={twilio['account_sid']}\n"
        f"TWILIO_AUTH_TOKEN={twilio['auth_token']}\n"
    )
    return text, [openai, twilio["auth_token"]]


def report_of(mails):
    """The one mailed report: its subject, its text and its HTML (unescaped)."""
    assert len(mails) == 1, [m.subject for m in mails]
    message = mails[0]
    (html_body, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    return message.subject, message.body, html.unescape(html_body)


def check_report(report, secrets, failing_frame, protected, reachable=True, elsewhere=""):
    """``report`` (subject, text, HTML) is about the injected failure, shows
    ``failing_frame`` and, with the filter on, no piece of any of ``secrets`` (nor does
    ``elsewhere``, the 500 page say); with it off, some piece when ``reachable``."""
    subject, text, html_report = report
    for part in (text, html_report):
        assert FAILURE in part  # the report is about the injected failure ...
        assert failing_frame in part  # ... and shows the frame that failed
    everything = "\n".join([subject, text, html_report, elsewhere])
    pieces = {piece for secret in secrets for piece in windows(secret, 12)}
    shown = sorted(piece for piece in pieces if piece in everything)
    if protected or not reachable:
        assert not shown, f"{len(shown)} pieces of a secret in the report"
    if protected:
        assert SafeExceptionReporterFilter.cleansed_substitute in text
    elif reachable:
        assert shown, "the case never put the secret within the report's reach"


def check(response, secrets, failing_frame, mails, protected, reachable=True):
    """The request failed with a 500 and the report mailed for it passes :func:`check_report`."""
    assert response.status_code == 500
    report = report_of(mails)
    check_report(report, secrets, failing_frame, protected, reachable, response.content.decode())
