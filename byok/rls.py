"""PostgreSQL row-level security, the connection's side: whose rows it may read.

With ``BYOK["POSTGRES_ROW_LEVEL_SECURITY"]`` on, the policies that
``byok_row_level_security enable`` puts on byok's tables (:mod:`byok.rls_policies`)
read two variables of the database session: ``byok.user_id``, the user whose rows
(and whose teams' rows) are visible, and ``byok.rls_bypass``, ``on`` to see every
row. Nothing set: no row at all.

:class:`byok.middleware.RowLevelSecurityMiddleware` sets the user for a request and
clears it afterwards; :func:`acting_for` and :func:`bypass` set them for code outside
a request (commands, tasks, the host's scripts). With the setting off all of this
does nothing and sends no SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple, ParamSpec, TypeVar

from django.db import DatabaseError, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from byok.conf import conf
from byok.models import UserAPIKey

#: The session variables the policies read.
USER_VARIABLE = "byok.user_id"
BYPASS_VARIABLE = "byok.rls_bypass"

P = ParamSpec("P")
T = TypeVar("T")


class Scope(NamedTuple):
    """What a connection may see: one user's rows (``user_id``, ``""`` for nobody's),
    or with ``bypass`` every row."""

    user_id: str = ""
    bypass: bool = False


#: No user, no bypass: the policies let no row through.
NOBODY = Scope()

#: The scope in force in this thread or task, to restore when an inner one ends and
#: to set again on a connection opened in the middle of it.
_scope: ContextVar[Scope] = ContextVar("byok_rls_scope", default=NOBODY)


def enabled() -> bool:
    return conf.POSTGRES_ROW_LEVEL_SECURITY


def aliases() -> list[str]:
    """The PostgreSQL connections byok's tables are read and written through."""
    names = {router.db_for_read(UserAPIKey), router.db_for_write(UserAPIKey)}
    return sorted(alias for alias in names if connections[alias].vendor == "postgresql")


def user_id(user: Any) -> str:
    """The text ``byok.user_id`` holds for ``user`` (a user or its primary key);
    ``""`` for nobody (``None``, an anonymous user)."""
    if user is None or getattr(user, "is_anonymous", False):
        return ""
    pk = getattr(user, "pk", user)
    return "" if pk is None else str(pk)


def current() -> Scope:
    """The scope in force here (:data:`NOBODY` outside any)."""
    return _scope.get()


def _set_on(connection: BaseDatabaseWrapper, scope: Scope) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
            [USER_VARIABLE, scope.user_id, BYPASS_VARIABLE, "on" if scope.bypass else "off"],
        )


def enter(scope: Scope) -> Scope:
    """Put ``scope`` in force on byok's connections; the scope it replaces."""
    previous = _scope.get()
    for alias in aliases():
        _set_on(connections[alias], scope)
    _scope.set(scope)
    return previous


def leave(previous: Scope) -> None:
    """Put ``previous`` back in force. A connection that cannot take it (its transaction
    failed) is closed, so that no scope outlives the code it was set for."""
    _scope.set(previous)
    for alias in aliases():
        connection = connections[alias]
        try:
            _set_on(connection, previous)
        except DatabaseError:
            connection.close()


@contextmanager
def _scoped(make: Callable[[Scope], Scope]) -> Iterator[None]:
    if not enabled():
        yield
        return
    previous = enter(make(_scope.get()))
    try:
        yield
    finally:
        leave(previous)


def bypass() -> AbstractContextManager[None]:
    """Every row, for the block: byok's commands and tasks and the admin (for staff)
    run under it; a host's job that works across users wraps itself in it."""
    return _scoped(lambda outer: outer._replace(bypass=True))


def acting_for(user: Any) -> AbstractContextManager[None]:
    """``user``'s rows (and their teams'), for the block: what a request of theirs sees,
    for a task or script that works for one user."""
    return _scoped(lambda outer: Scope(user_id(user), bypass=False))


def bypassing(function: Callable[P, T]) -> Callable[P, T]:
    """``function``, run under :func:`bypass`."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with bypass():
            return function(*args, **kwargs)

    return wrapper


@receiver(connection_created, dispatch_uid="byok.rls.scope_new_connection")
def _scope_new_connection(*, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """A connection opened (or reopened) in the middle of a scope starts in it too: a
    new session has no variables set, which would hide every row from a command."""
    scope = _scope.get()
    if scope != NOBODY and enabled() and connection.alias in aliases():
        _set_on(connection, scope)
