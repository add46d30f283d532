"""The hot path: one statement that finds what serves a (user, service, environment).

``get_user_api_key`` runs on every call a host makes to a provider, so it skips
the ORM's query building: the statement is written once per database vendor
from the models' metadata and each call only binds three parameters. It reads
the slot's preference row joined to its default key, which answers "the user's
key, or may the platform stand in?" in one round trip whether or not a key
exists. ``benchmarks/lookup.py`` holds the budget.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from byok.fields import SealedCredentials
from byok.models import ServicePreference, UserAPIKey


class SlotRow(NamedTuple):
    """The row the lookup reads for a slot: its preference and default key, still encrypted.

    A named tuple, not a dataclass: it is built on every lookup.
    """

    allow_platform_fallback: bool
    key_id: uuid.UUID | None
    credentials: SealedCredentials | None


_statements: dict[str, str] = {}


def _statement(connection: BaseDatabaseWrapper) -> str:
    sql = _statements.get(connection.vendor)
    if sql is None:
        sql = _statements[connection.vendor] = _build_statement(connection.ops.quote_name)
    return sql


def _build_statement(quote_name: Any) -> str:
    pref, key = ServicePreference._meta, UserAPIKey._meta

    def column(meta: Any, name: str) -> str:
        return str(quote_name(meta.get_field(name).column))

    # Only quoted names from the models' metadata go into the text; values are bound.
    return (
        f"SELECT p.{column(pref, 'allow_platform_fallback')}, "  # noqa: S608
        f"k.{column(key, 'id')}, k.{column(key, 'credentials')} "
        f"FROM {quote_name(pref.db_table)} p "
        f"LEFT JOIN {quote_name(key.db_table)} k "
        f"ON k.{column(key, 'id')} = p.{column(pref, 'default_key')} "
        f"WHERE p.{column(pref, 'user')} = %s AND p.{column(pref, 'service')} = %s "
        f"AND p.{column(pref, 'environment')} = %s"
    )


def find_slot(user_pk: Any, service: str, environment: str) -> SlotRow | None:
    """The slot's preference and default key, or ``None`` if the user never had one."""
    connection: BaseDatabaseWrapper = connections[router.db_for_read(ServicePreference)]
    params = [_USER_PK.get_db_prep_value(user_pk, connection), service, environment]
    with connection.cursor() as cursor:
        cursor.execute(_statement(connection), params)
        row = cursor.fetchone()
    if row is None:
        return None
    allow, key_id, token = row
    return SlotRow(
        bool(allow),
        None if key_id is None else _KEY_PK.to_python(key_id),
        None if token is None else SealedCredentials(token),
    )


#: The fields whose conversions the lookup runs on each call.
_USER_PK = ServicePreference._meta.get_field("user").target_field
_KEY_PK = UserAPIKey._meta.pk
