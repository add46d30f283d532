"""Finding the user a command is about."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


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
