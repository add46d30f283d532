"""What a provider's answer means, declared as data.

A service lists :class:`Answer` rows: the first row that matches an answer gives its
probe status and message; an answer no row matches gets the usual reading (2xx valid,
401/403 invalid, 429 rate limited, anything else a provider error). A service whose
keys may live in another data region names that region's host in a :class:`Region`,
tried once when its main host answers 401.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise

from byok.http import ProbeResponse
from byok.results import ProbeStatus

Text = str | Promise

#: Every 2xx status, for a row about accepted answers.
ACCEPTED = range(200, 300)


@dataclass(frozen=True)
class Answer:
    """One row of a service's answer table.

    It matches an answer whose HTTP status is in ``http``, whose error code (read by
    :meth:`Service.error_code <byok.services.base.Service.error_code>`) is ``code``
    (one of them, when a tuple; ``""`` for an answer that gives none; ``None``: any),
    and whose error message contains one of ``says`` (case-insensitive; empty: any).
    Rows match API answers only, unless ``html``: then a web page in the API's place
    (a proxy's, a firewall's) matches too. ``message`` replaces the standard message
    of ``status``.
    """

    http: int | tuple[int, ...] | range
    status: ProbeStatus
    message: Text = ""
    code: str | tuple[str, ...] | None = None
    says: str | tuple[str, ...] = ()
    html: bool = False

    def matches(self, response: ProbeResponse, code: str, error_message: str) -> bool:
        statuses = (self.http,) if isinstance(self.http, int) else self.http
        if response.status not in statuses or (response.is_html and not self.html):
            return False
        if self.code is not None:
            codes = (self.code,) if isinstance(self.code, str) else self.code
            if code not in codes:
                return False
        words = (self.says,) if isinstance(self.says, str) else self.says
        text = error_message.lower()
        return not words or any(word.lower() in text for word in words)


@dataclass(frozen=True)
class Region:
    """Another data region's API host, where some keys of the service live."""

    base_url: str
    name: Text
