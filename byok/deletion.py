"""Deleting an owner (a user or a team) deletes what it owns.

Django's ``CASCADE`` on a nullable foreign key first sets it to ``NULL`` on databases
that cannot defer constraint checks (MySQL, MariaDB), which the constraint "a row has
exactly one owner" refuses. :func:`delete_with_owner` cascades without that step: the
owned rows are deleted before their owner instead. Migrations refer to it by this
path, so it stays here.
"""

from __future__ import annotations

from typing import Any


def delete_with_owner(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    """``on_delete`` for an owner's foreign key: ``CASCADE``, never emptying the key."""
    collector.collect(
        sub_objs,
        source=field.remote_field.model,
        source_attr=field.name,
        nullable=False,
        fail_on_restricted=False,
    )
