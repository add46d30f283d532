"""How a request carries a credential, declared once per service.

A service names one of these as its :attr:`~byok.services.base.Service.authentication`;
its probe reads the same declaration (:meth:`Authentication.headers`,
:meth:`Authentication.basic`), and :meth:`Authentication.auth` turns it into a
``requests`` auth object that applies it to each request a host sends
(:func:`byok.clients.session`). A declaration holds field names, never values, so
its repr is safe to log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.views.decorators.debug import sensitive_variables
from requests import PreparedRequest
from requests.auth import AuthBase, HTTPBasicAuth

from byok.services.sigv4 import sign

__all__ = [
    "UNSIGNED_PAYLOAD",
    "Authentication",
    "Basic",
    "Bearer",
    "CredentialAuth",
    "Header",
    "QueryParameters",
    "SigV4",
]

Credentials = Mapping[str, str]

#: What S3 takes as the payload hash of a body that cannot be read twice (a file, a generator).
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Authentication:
    """A way of sending a credential. Subclasses override what their scheme uses."""

    #: Headers sent with every request that are not secret (an API version).
    fixed_headers: Mapping[str, str] = field(default_factory=dict, kw_only=True)

    @property
    def needs(self) -> tuple[str, ...]:
        """The credential fields this scheme reads."""
        return ()

    def headers(self, credentials: Credentials) -> dict[str, str]:
        """The headers that carry the credential, and the fixed ones."""
        return dict(self.fixed_headers)

    def basic(self, credentials: Credentials) -> tuple[str, str] | None:
        """The HTTP basic user name and password, for a scheme that uses them."""
        return None

    def parameters(self, credentials: Credentials) -> dict[str, str]:
        """Query parameters that carry the credential."""
        return {}

    def sign(self, request: PreparedRequest, credentials: Credentials) -> None:
        """Sign a request that is otherwise complete, for a scheme that signs."""

    def missing(self, credentials: Credentials) -> list[str]:
        """The fields this scheme needs that ``credentials`` lacks."""
        return [name for name in self.needs if not credentials.get(name)]

    def auth(self, credentials: Credentials) -> CredentialAuth:
        """A ``requests`` auth object applying this scheme with ``credentials``."""
        return CredentialAuth(self, credentials)


@dataclass(frozen=True)
class Bearer(Authentication):
    """``Authorization: Bearer <field>``."""

    field: str = "api_key"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.field,)

    def headers(self, credentials: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {credentials[self.field]}", **self.fixed_headers}


@dataclass(frozen=True)
class Header(Authentication):
    """The credential as the value of a header (``x-api-key: <key>``), after a
    ``prefix`` when the scheme has one (``Authorization: DeepL-Auth-Key <key>``)."""

    name: str
    field: str = "api_key"
    prefix: str = ""

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.field,)

    def headers(self, credentials: Credentials) -> dict[str, str]:
        return {self.name: f"{self.prefix}{credentials[self.field]}", **self.fixed_headers}


@dataclass(frozen=True)
class Basic(Authentication):
    """HTTP basic authentication with two fields as the user name and password."""

    username: str
    password: str

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.username, self.password)

    def basic(self, credentials: Credentials) -> tuple[str, str]:
        return (credentials[self.username], credentials[self.password])


@dataclass(frozen=True)
class QueryParameters(Authentication):
    """The credential in the query string: parameter name to field name."""

    names: Mapping[str, str]

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(self.names.values())

    def parameters(self, credentials: Credentials) -> dict[str, str]:
        return {parameter: credentials[name] for parameter, name in self.names.items()}


@dataclass(frozen=True)
class SigV4(Authentication):
    """AWS Signature Version 4, computed for each request (:mod:`byok.services.sigv4`)."""

    service: str
    default_region: str = "us-east-1"

    @property
    def needs(self) -> tuple[str, ...]:
        return ("access_key_id", "secret_access_key")

    @sensitive_variables()
    def sign(self, request: PreparedRequest, credentials: Credentials) -> None:
        body = request.body
        if body is None or isinstance(body, bytes | str):
            data = body.encode() if isinstance(body, str) else body or b""
            payload_hash = hashlib.sha256(data).hexdigest()
        else:
            data, payload_hash = b"", UNSIGNED_PAYLOAD
        # Only what no proxy rewrites is signed: the host, the body's hash and type,
        # and the caller's own x-amz-* headers.
        signed = {"x-amz-content-sha256": payload_hash}
        for name, value in request.headers.items():
            lowered = name.lower()
            if lowered.startswith("x-amz-") or lowered in ("content-type", "content-md5"):
                signed[lowered] = value if isinstance(value, str) else value.decode()
        request.headers.update(signed)
        request.headers.update(
            sign(
                request.method or "GET",
                request.url or "",
                signed,
                data,
                access_key_id=credentials["access_key_id"],
                secret_access_key=credentials["secret_access_key"],
                region=credentials.get("region") or self.default_region,
                service=self.service,
                session_token=credentials.get("session_token"),
                payload_hash=payload_hash,
            )
        )


class CredentialAuth(AuthBase):
    """Applies an :class:`Authentication` with one credential to each request.

    Its repr names the scheme only: the credential never shows in a log or a report.
    """

    def __init__(self, authentication: Authentication, credentials: Credentials) -> None:
        self.authentication = authentication
        self._credentials = dict(credentials)

    def __repr__(self) -> str:
        return f"<CredentialAuth {type(self.authentication).__name__}>"

    def values(self) -> list[str]:
        """The credential's values, longest first (to blank them out of a message)."""
        return sorted((v for v in self._credentials.values() if v), key=len, reverse=True)

    @sensitive_variables()
    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        scheme, credentials = self.authentication, self._credentials
        request.headers.update(scheme.headers(credentials))
        basic = scheme.basic(credentials)
        if basic is not None:
            request = HTTPBasicAuth(*basic)(request)
        parameters = scheme.parameters(credentials)
        if parameters:
            request.prepare_url(request.url or "", parameters)
        scheme.sign(request, credentials)
        return request
