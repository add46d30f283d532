"""Deprecated: this module is now :mod:`byok.redaction`.

``byok.logging.RedactSecretsFilter`` still works in a ``LOGGING`` setting, with a
``DeprecationWarning``; write ``byok.redaction.RedactSecretsFilter`` instead.
"""

from __future__ import annotations

import warnings
from typing import Any

from byok import redaction


def __getattr__(name: str) -> Any:
    value = getattr(redaction, name)
    warnings.warn(
        f"byok.logging.{name} is deprecated; use byok.redaction.{name}.",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
