"""What a call costs: per-model price tables, declared by services, overridden by hosts.

Prices are USD per million tokens (``input``, ``output``, ``cached_input``,
``cache_write``) or per unit (``unit``: an e-mail, a message). A service declares a
:class:`PriceTable` with the date and source of its figures; ``BYOK["PRICES"]``
overrides or extends it model by model, shaped
``{"openai": {"my-model": {"input": "2.50", "output": "10.00"}}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

MILLION = Decimal(1_000_000)
#: A dated snapshot or alias of a model: ``gpt-4o-2024-08-06``,
#: ``claude-sonnet-4-20250514``, ``claude-3-5-haiku-latest``.
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True)
class Tokens:
    """What one call used. ``input`` counts every input token, the ``cached`` ones
    (read from the provider's prompt cache) and the ``cache_write`` ones included."""

    input: int = 0
    output: int = 0
    cached: int = 0
    cache_write: int = 0
    units: int = 0


@dataclass(frozen=True)
class Price:
    """One model's prices in USD: per million tokens, and per unit."""

    input: Decimal = Decimal(0)
    output: Decimal = Decimal(0)
    #: Cached input tokens; ``None``: billed as input.
    cached_input: Decimal | None = None
    #: Input tokens written to the prompt cache; ``None``: billed as input.
    cache_write: Decimal | None = None
    #: One unit (an e-mail, a message).
    unit: Decimal = Decimal(0)
    #: When and where these figures were read, when not the table's.
    as_of: date | None = None
    source: str = ""

    @classmethod
    def of(cls, value: Price | Mapping[str, Any]) -> Price:
        """A price from a mapping of the field names to numbers or numeric strings."""
        if isinstance(value, Price):
            return value
        names = {f.name for f in fields(cls)} - {"as_of", "source"}
        unknown = set(value) - names
        if unknown:
            raise ValueError(f"unknown price fields: {', '.join(sorted(unknown))}")
        try:
            figures = {name: Decimal(str(amount)) for name, amount in value.items()}
        except InvalidOperation:
            raise ValueError("prices must be numbers, or numeric strings") from None
        if any(amount < 0 for amount in figures.values()):
            raise ValueError("prices must not be negative")
        return cls(**figures)  # type: ignore[arg-type]

    def cost(self, tokens: Tokens) -> Decimal:
        """What ``tokens`` cost at these prices."""
        cached = min(tokens.cached, tokens.input)
        written = min(tokens.cache_write, tokens.input - cached)
        plain = tokens.input - cached - written
        per_million = (
            plain * self.input
            + cached * (self.input if self.cached_input is None else self.cached_input)
            + written * (self.input if self.cache_write is None else self.cache_write)
            + tokens.output * self.output
        )
        return per_million / MILLION + tokens.units * self.unit


def per_million(
    input_price: str,
    output_price: str = "0",
    cached_input: str | None = None,
    *,
    cache_write: str | None = None,
    as_of: date | None = None,
) -> Price:
    """A :class:`Price` from USD-per-million-token figures written as text."""
    return Price(
        Decimal(input_price),
        Decimal(output_price),
        None if cached_input is None else Decimal(cached_input),
        None if cache_write is None else Decimal(cache_write),
        as_of=as_of,
    )


@dataclass(frozen=True)
class PriceTable:
    """A service's list prices by model, with where and when they were read."""

    as_of: date | None
    source: str
    models: Mapping[str, Price] = field(default_factory=dict)

    def price(self, model: str) -> Price | None:
        """The price of ``model``, or of the model a snapshot or alias of it names."""
        found = self.models.get(model)
        if found is None:
            found = self.models.get(_SNAPSHOT.sub("", model))
        return found

    def dated(self, model: str) -> tuple[date | None, str]:
        """When and where the figures of ``model`` were read."""
        price = self.price(model)
        if price is None or (price.as_of is None and not price.source):
            return self.as_of, self.source
        return price.as_of or self.as_of, price.source or self.source


def price_table(declared: PriceTable | None, overrides: Mapping[str, Any]) -> PriceTable | None:
    """A service's table with the host's ``BYOK["PRICES"]`` entries for it on top."""
    if not overrides:
        return declared
    models = dict(declared.models) if declared else {}
    for name, value in overrides.items():
        models[name] = replace(Price.of(value), source="BYOK['PRICES']")
    if declared is None:
        return PriceTable(None, "BYOK['PRICES']", models)
    return PriceTable(declared.as_of, declared.source, models)
