"""Teams: keys a team owns, which its members use without seeing them.

Which teams a user is in, and with which role, comes from a *team adapter*:
byok's own (:class:`MembershipAdapter`, over :class:`~byok.models.TeamMembership`) or
the host's (``BYOK["TEAM_ADAPTER"]``), for a host whose own team or organization model
``settings.BYOK_TEAM_MODEL`` names. The key lookup joins the adapter's membership
table in its one query, so a user who leaves a team stops using its keys at once.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from byok.conf import conf
from byok.models import TeamMembership, TeamRole, fits_an_id, team_model

#: The roles that manage a team's keys (add, replace, test, switch, remove, reveal).
MANAGERS = frozenset({TeamRole.OWNER, TeamRole.ADMIN})


class TeamAdapter:
    """Who is in which team, with which role. Subclass it for a team model of your own.

    ``membership_model`` names a model with a foreign key to the user model
    (``user_field``) and one to the team model (``team_field``): the key lookup joins
    its table to tell a member from anyone else. :meth:`role_of` and
    :meth:`teams_of` say more, for the pages and the permissions.
    """

    membership_model = "byok.TeamMembership"
    user_field = "user"
    team_field = "team"

    def role_of(self, user: Any, team: Any) -> str | None:
        """``owner``, ``admin``, ``member``, or ``None`` for a user not in the team."""
        raise NotImplementedError

    def teams_of(self, user: Any) -> list[tuple[Any, str]]:
        """The user's teams, each with the user's role in it."""
        raise NotImplementedError

    def members_of(self, team: Any) -> list[tuple[Any, str]]:
        """The team's members, each with their role."""
        raise NotImplementedError


class MembershipAdapter(TeamAdapter):
    """byok's own: :class:`~byok.models.TeamMembership` rows."""

    def role_of(self, user: Any, team: Any) -> str | None:
        if user is None or not user.is_authenticated or team is None:
            return None
        membership = TeamMembership.objects.filter(user=user, team=team).first()
        return None if membership is None else membership.role

    def teams_of(self, user: Any) -> list[tuple[Any, str]]:
        if user is None or not user.is_authenticated:
            return []
        rows = TeamMembership.objects.filter(user=user).select_related("team").order_by("team")
        return [(row.team, row.role) for row in rows]

    def members_of(self, team: Any) -> list[tuple[Any, str]]:
        rows = TeamMembership.objects.filter(team=team).select_related("user").order_by("user")
        return [(row.user, row.role) for row in rows]


_adapter: TeamAdapter | None = None


@receiver(setting_changed)
def _forget_adapter(*, setting: str, **kwargs: object) -> None:
    global _adapter
    if setting in ("BYOK", "BYOK_TEAM_MODEL"):
        _adapter = None


def adapter() -> TeamAdapter:
    """The team adapter ``BYOK["TEAM_ADAPTER"]`` names (byok's own by default)."""
    global _adapter
    if _adapter is None:
        path = conf.TEAM_ADAPTER
        try:
            cls = import_string(path)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"Cannot import BYOK['TEAM_ADAPTER'] {path!r}: {error}"
            ) from error
        if not (isinstance(cls, type) and issubclass(cls, TeamAdapter)):
            raise ImproperlyConfigured(
                f"BYOK['TEAM_ADAPTER'] {path!r} is not a subclass of byok.teams.TeamAdapter."
            )
        _adapter = cls()
    return _adapter


def membership_model() -> type[models.Model]:
    return apps.get_model(adapter().membership_model)


def role_of(user: Any, team: Any) -> str | None:
    return adapter().role_of(user, team)


def can_manage(user: Any, team: Any) -> bool:
    """Whether ``user`` may add, replace, test, switch, remove or reveal the team's keys."""
    return role_of(user, team) in MANAGERS


def require_manager(user: Any, team: Any) -> None:
    """``PermissionDenied`` unless ``user`` is an owner or admin of ``team``."""
    if not can_manage(user, team):
        raise PermissionDenied(_("Only the team's owners and admins manage its keys."))


def clean_team_id(raw: object) -> Any:
    """The team primary key ``raw`` (from a URL) stands for, or ``None`` if it cannot be
    one: malformed, a NUL, or past a 64-bit column (which some drivers raise on)."""
    if not isinstance(raw, str) or "\x00" in raw:
        return None
    try:
        pk = team_model()._meta.pk.clean(raw, None)
    except (ValidationError, TypeError, ValueError):
        return None
    return pk if pk is not None and fits_an_id(pk) else None


def find_team(user: Any, raw: object) -> tuple[Any, str] | None:
    """The team whose id is ``raw`` and ``user``'s role in it; ``None`` if they are not
    in it, there is no such team, or ``raw`` is not an id. Two queries at most."""
    pk = clean_team_id(raw)
    if pk is None:
        return None
    team = team_model()._default_manager.filter(pk=pk).first()
    role = None if team is None else role_of(user, team)
    return None if role is None else (team, role)


def pick_team(memberships: list[tuple[Any, str]], raw: object) -> tuple[Any, str] | None:
    """The team whose id is ``raw`` among ``memberships`` (:meth:`TeamAdapter.teams_of`'s
    answer), with the role: no query, for a page that lists the user's teams anyway."""
    pk = clean_team_id(raw)
    if pk is None:
        return None
    return next(((team, role) for team, role in memberships if team.pk == pk), None)


# -- The current team ----------------------------------------------------------------

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "byok_current_request", default=None
)


class CurrentRequestMiddleware:
    """Makes the request being served known to ``BYOK["CURRENT_TEAM"]``, so that host
    code calling ``get_user_api_key(user, service)`` in a view gets the team the user
    is working in. Add it after ``AuthenticationMiddleware``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def current_request() -> HttpRequest | None:
    """The request :class:`CurrentRequestMiddleware` is serving, if any."""
    return _request.get()


def current_team(user: Any) -> Any:
    """The team a call is made for when none is given: what ``BYOK["CURRENT_TEAM"]``
    (a callable ``(user, request) -> team | None``) says, else none."""
    path = conf.CURRENT_TEAM
    if not path:
        return None
    chooser = import_string(path) if isinstance(path, str) else path
    return chooser(user, current_request())


def team_pk(team: Any) -> Any:
    """A team's primary key, from the team or the key itself."""
    if team is None:
        return None
    return team.pk if isinstance(team, team_model()) else team
