"""The REST API's JSON parser: DRF's, through :func:`byok.jsonsafe.loads`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from byok import jsonsafe


class JSONParser(parsers.JSONParser):
    """DRF's ``JSONParser``, refusing a body nested too deeply with a 400.

    It runs wherever DRF first reads the body (for session authentication, in the
    CSRF check, before any view code): error reports hide its variables and its
    callees', so a body that fails to parse never shows up in one.
    """

    @sensitive_variables()
    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        constant = strict_constant if self.strict else None
        try:
            return jsonsafe.loads(stream.read().decode(encoding), parse_constant=constant)
        except jsonsafe.JSONTooDeep as error:
            raise ParseError(
                _("The JSON body is nested more than %(depth)d levels deep.")
                % {"depth": error.max_depth}
            ) from None
        except ValueError as error:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": error}) from None
