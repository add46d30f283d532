"""django-byok: let the users of a Django site bring their own API keys.

The public helpers are imported lazily so that ``import byok`` stays cheap and
never touches Django's settings or app registry.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from byok.version import __version__

__all__ = [
    "BudgetExceeded",
    "NoAPIKey",
    "ResolvedKey",
    "__version__",
    "add_team_api_key",
    "add_user_api_key",
    "aget_user_api_key",
    "aresolve_api_key",
    "atrack_api_usage",
    "get_user_api_key",
    "reserve",
    "resolve_api_key",
    "set_budget",
    "set_platform_fallback",
    "test_credentials",
    "test_user_api_key",
    "track_api_usage",
    "validate_credentials",
]

_LAZY = {
    "BudgetExceeded": "byok.exceptions",
    "NoAPIKey": "byok.exceptions",
    "reserve": "byok.reservations",
    "set_budget": "byok.budgets",
    "ResolvedKey": "byok.resolution",
    "add_team_api_key": "byok.keys",
    "add_user_api_key": "byok.keys",
    "aget_user_api_key": "byok.resolution",
    "aresolve_api_key": "byok.resolution",
    "get_user_api_key": "byok.resolution",
    "resolve_api_key": "byok.resolution",
    "set_platform_fallback": "byok.keys",
    "atrack_api_usage": "byok.usage",
    "track_api_usage": "byok.usage",
    "test_credentials": "byok.probes",
    "test_user_api_key": "byok.keys",
    "validate_credentials": "byok.validation",
}

if TYPE_CHECKING:
    from byok.budgets import set_budget
    from byok.exceptions import BudgetExceeded, NoAPIKey
    from byok.keys import (
        add_team_api_key,
        add_user_api_key,
        set_platform_fallback,
        test_user_api_key,
    )
    from byok.probes import test_credentials
    from byok.reservations import reserve
    from byok.resolution import (
        ResolvedKey,
        aget_user_api_key,
        aresolve_api_key,
        get_user_api_key,
        resolve_api_key,
    )
    from byok.usage import atrack_api_usage, track_api_usage
    from byok.validation import validate_credentials


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'byok' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
