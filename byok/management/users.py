"""Finding the user, or the team, a command is about."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.management.base import CommandError

from byok.models import team_model


def find_user(value: str) -> Any:
    """The user whose ``USERNAME_FIELD`` is ``value``, else whose primary key is."""
    model = get_user_model()
    users = model._default_manager.all()
    found = users.filter(**{model.USERNAME_FIELD: value}).first()
    if found is None:
        try:
            found = users.filter(pk=value).first()
        except (ValueError, ValidationError):  # not a valid primary key for this model
            found = None
    if found is None:
        raise CommandError(f"No user has {model.USERNAME_FIELD} or id {value!r}.")
    return found


def find_team(value: str) -> Any:
    """The team whose primary key is ``value``, else the one team whose ``name`` (or
    ``slug``, for a host's team model that has one) is."""
    model = team_model()
    if "\x00" in value:  # no team has one, and PostgreSQL refuses it in a query
        raise CommandError(f"No team has id or name {value!r}.")
    teams = model._default_manager.all()
    try:
        found = teams.filter(pk=model._meta.pk.clean(value, None)).first()
    except (ValueError, ValidationError):  # not a valid primary key for this model
        found = None
    for name in ("name", "slug"):
        if found is not None:
            break
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        named = list(teams.filter(**{name: value})[:2])
        if len(named) > 1:
            raise CommandError(f"Several teams have {name} {value!r}; give the team's id.")
        found = named[0] if named else None
    if found is None:
        raise CommandError(f"No team has id or name {value!r}.")
    return found
