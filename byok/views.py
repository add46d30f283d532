"""The pages: the API-keys dashboard, adding, testing and removing keys, and usage.

Every action is a plain form post (CSRF, Django messages, a redirect), so the pages
work without JavaScript. ``byok.js`` enhances them: it posts the same forms with
``Accept: application/json`` and gets JSON back instead of a redirect.

With ``?team=<id>`` the dashboard and the usage page show one of the user's teams. A
team's keys are added, tested and removed by its owners and admins through the same
views under ``teams/<id>/``: to anyone else (a member, an outsider) those are a 404.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from byok import kms, teams
from byok.budget_bars import budget_bars, covering
from byok.charts import BarChart, Series
from byok.conf import conf
from byok.exceptions import (
    DecryptionError,
    KeyRejected,
    KmsError,
    TooManyTests,
    UnknownService,
)
from byok.forms import AddKeyForm, ImportForm
from byok.importing import ImportReport, import_file
from byok.key_age import key_age
from byok.keys import (
    add_team_api_key,
    add_user_api_key,
    remove_user_api_key,
    test_user_api_key,
)
from byok.models import NotificationKind, TeamRole, UserAPIKey
from byok.notifications import set_wanted, wanted_kinds
from byok.rate_limits import probes_paid_by, spend_test_budget, too_many_tests
from byok.results import ProbeResult, ProbeStatus
from byok.services.base import CATEGORIES, Service
from byok.services.registry import registry
from byok.stats import stats_for, team_stats_for
from byok.usage import calls_by_key, cost_by_model, team_totals, usage_for

USAGE_WINDOWS = (7, 30, 90)
BANNER_DISMISSED = "byok_banner_dismissed"


def wants_json(request: HttpRequest) -> bool:
    """A request from byok.js (``Accept: application/json``), not a plain form post."""
    return request.headers.get("Accept", "").startswith("application/json")


def dashboard_url(team: Any = None) -> str:
    """The dashboard, showing ``team`` if given."""
    url = reverse("byok:dashboard")
    return url if team is None else f"{url}?{urlencode({'team': team.pk})}"


def done(
    request: HttpRequest,
    level: int,
    text: str,
    *,
    http_status: int = 200,
    team: Any = None,
    **data: Any,
) -> HttpResponse:
    """Tell the user: a JSON answer for byok.js, else a message and back to the dashboard
    (showing ``team``, if the action was on one of its keys)."""
    if wants_json(request):
        return JsonResponse(
            {
                "ok": level < messages.WARNING,
                "level": messages.DEFAULT_TAGS.get(level, "info"),
                "message": text,
                **data,
            },
            status=http_status,
        )
    messages.add_message(request, level, text, fail_silently=True)
    return redirect(dashboard_url(team))


def page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(
        request, template, {"byok_base_template": conf.BASE_TEMPLATE, **context}, status=status
    )


def own_key(request: HttpRequest, key_id: str) -> UserAPIKey:
    """One of the signed-in user's keys; another user's key is a 404."""
    return get_object_or_404(UserAPIKey.objects.for_user(request.user), pk=key_id)


def managed_team(request: HttpRequest, team_id: str | None) -> Any:
    """The team whose keys a management view changes (``None`` for the user's own
    keys): a 404 unless the user is one of its owners or admins, so that a member
    cannot tell these views from a team that does not exist."""
    if team_id is None:
        return None
    found = teams.find_team(request.user, team_id)
    if found is None or found[1] not in teams.MANAGERS:
        raise Http404(_("No team of yours has this id."))
    return found[0]


def key_to_manage(request: HttpRequest, key_id: str, team: Any) -> UserAPIKey:
    """The key a management view acts on: the user's, or ``team``'s (already checked by
    :func:`managed_team`); any other key is a 404."""
    if team is None:
        return own_key(request, key_id)
    return get_object_or_404(UserAPIKey.objects.for_team(team), pk=key_id)


def chosen_team(request: HttpRequest) -> tuple[list[tuple[Any, str]], tuple[Any, str] | None]:
    """The user's teams (with their role) and the one ``?team=`` picks, if any: one
    query. An id that is not one of their teams' is a 404."""
    memberships = teams.adapter().teams_of(request.user)
    raw = request.GET.get("team", "")
    if not raw:
        return memberships, None
    chosen = teams.pick_team(memberships, raw)
    if chosen is None:
        raise Http404(_("No team of yours has this id."))
    return memberships, chosen


def reveal_url_template(team: Any = None) -> str | None:
    """The REST API's reveal URL (a team's key's, with ``team``) with ``{id}`` to fill
    in, if the host mounted the API."""
    placeholder = "00000000-0000-0000-0000-000000000000"
    try:
        if team is None:
            url = reverse("byok_api:apikey-reveal", args=[placeholder])
        else:
            url = reverse("byok_api:teamkey-reveal", args=[team.pk, placeholder])
    except NoReverseMatch:
        return None
    return url.replace(placeholder, "{id}")


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The service grid: every service, with the user's keys for it (or, with
    ``?team=<id>``, the team's: its owners and admins manage them, its members see
    them masked)."""
    category = request.GET.get("category", "")
    if category not in CATEGORIES:
        category = ""
    memberships, chosen = chosen_team(request)
    team, role = chosen if chosen is not None else (None, None)
    manages = team is None or role in teams.MANAGERS
    stored = (
        UserAPIKey.objects.for_user(request.user)
        if team is None
        else UserAPIKey.objects.for_team(team)
    )
    mine = {} if manages else calls_by_key(team, request.user)
    keys: dict[str, list[UserAPIKey]] = defaultdict(list)
    # At most BYOK["MAX_KEYS_PER_USER"], the newest: a page of bounded size and cost
    # even for an owner who stored more before the cap existed.
    for key in (
        stored.masked().with_default_flag().order_by("-created_at")[: conf.MAX_KEYS_PER_USER]
    ):
        key.age = key_age(key)
        key.my_calls = mine.get(key.pk, 0)
        keys[key.service].append(key)
    bars = budget_bars(request.user) if team is None else []
    cards = [
        {
            "service": service,
            "keys": keys.get(service.id, []),
            "form": AddKeyForm(service) if manages else None,
            "connected": any(key.is_active for key in keys.get(service.id, [])),
            "budgets": covering(bars, service.id),
            # Every card is on the page; the other categories' are hidden.
            "hidden": bool(category) and service.category != category,
        }
        for service in registry
    ]
    if team is None:
        stats = stats_for(request.user)
    else:
        stats = team_stats_for(team, member=None if manages else request.user)
    return page(
        request,
        "byok/dashboard.html",
        {
            "cards": cards,
            "categories": CATEGORIES,
            "category": category,
            "stats": stats,
            "show_banner": not request.session.get(BANNER_DISMISSED),
            "reveal_url": reveal_url_template(team) if conf.ALLOW_REVEAL and manages else None,
            "notification_kinds": NotificationKind.choices,
            "notifications_wanted": wanted_kinds(request.user) if team is None else (),
            **switcher_context(memberships, team, role),
        },
    )


def switcher_context(
    memberships: list[tuple[Any, str]], team: Any, role: str | None, keep: str = ""
) -> dict[str, Any]:
    """What the team switcher and the pages showing a team need; ``keep``, the query the
    switcher's links keep (the usage page's window)."""
    return {
        "switch_keep": keep,
        "memberships": memberships,
        "team": team,
        "team_role": role,
        "team_role_label": TeamRole(role).label if role in TeamRole.values else role or "",
        "manages": team is None or role in teams.MANAGERS,
        # A team's member: the keys without a control (a template that lacks this
        # context, such as a host's own copy, keeps every control).
        "read_only": team is not None and role not in teams.MANAGERS,
        "team_query": "" if team is None else urlencode({"team": team.pk}),
    }


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters()
@sensitive_variables()
def add_key(request: HttpRequest, service: str, team_id: str | None = None) -> HttpResponse:
    """The add-key form: its own page without JavaScript, the dialog's target with it.
    Under ``teams/<id>/`` it adds a key for that team (its owners and admins only)."""
    team = managed_team(request, team_id)
    try:
        definition = registry.get(service)
    except UnknownService:
        raise Http404(_("No such service.")) from None
    form = AddKeyForm(definition, request.POST if request.method == "POST" else None)
    result: ProbeResult | None = None
    status = 400
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            options: dict[str, Any] = {
                "nickname": data["nickname"],
                "environment": data["environment"],
                "test": data["test"],
                "expires_at": form.expires_at(),
                "actor": request.user,
                "request": request,
            }
            with probes_paid_by(request.user):
                if team is None:
                    key = add_user_api_key(
                        request.user, definition.id, form.credentials(), **options
                    )
                else:
                    key = add_team_api_key(team, definition.id, form.credentials(), **options)
        except TooManyTests as refused:
            status = 429
            form.add_error(None, too_many_tests(refused.wait))
        except KmsError as error:
            status = 503
            form.add_error(None, kms.unavailable(error))
        except KeyRejected as rejected:
            result = rejected.probe_result
            form.add_error(None, rejected.probe_result.message)
        except ValidationError as error:
            form.add_validation_error(error)
        else:
            return done(
                request,
                *added_message(definition, key, team),
                team=team,
                key=str(key.pk),
                saved=True,
            )
    if request.method == "POST" and wants_json(request):
        return JsonResponse(
            {
                "ok": False,
                "message": _("The key was not saved."),
                "errors": form.errors_as_data(),
                "test": None if result is None else result.as_dict(),
            },
            status=status,
        )
    context = {"service": definition, "form": form, "team": team}
    return page(
        request, "byok/add_key.html", context, status=status if request.method == "POST" else 200
    )


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters()
@sensitive_variables()
def import_keys(request: HttpRequest) -> HttpResponse:
    """Import keys from an uploaded ``.env`` file or JSON list; the result per entry."""
    form = ImportForm(request.POST or None, request.FILES or None)
    report: ImportReport | None = None
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            report = import_file(
                request.user,
                form.data_bytes(),
                dry_run=data["dry_run"],
                actor=request.user,
                request=request,
                test_budget=partial(spend_test_budget, request.user),
                **{name: data[name] for name in ("environment", "test", "atomic")},
            )
        except TooManyTests as refused:
            status = 429
            form.add_error(None, too_many_tests(refused.wait))
        except KmsError as error:
            status = 503
            form.add_error(None, kms.unavailable(error))
        except ValidationError as error:
            form.add_error("file", error.messages)
        else:
            messages.add_message(request, *import_message(report), fail_silently=True)
    if request.method == "POST" and status == 200 and (report is None or report.refused):
        status = 400
    return page(request, "byok/import.html", {"form": form, "report": report}, status=status)


def import_message(report: ImportReport) -> tuple[int, str]:
    imported = len(report.imported)
    if report.dry_run:
        return messages.INFO, _("Dry run: nothing was stored.")
    if report.refused:
        return messages.ERROR, report.failure_message()
    text = ngettext("%(count)d key was imported.", "%(count)d keys were imported.", imported) % {
        "count": imported
    }
    return (messages.WARNING if report.failed else messages.SUCCESS), text


def added_message(service: Service, key: UserAPIKey, team: Any = None) -> tuple[int, str]:
    result = key.probe_result
    names = {"service": service.name, "team": str(team)}
    if result is None:
        if team is not None:
            return messages.SUCCESS, _(
                "The %(service)s key of %(team)s was saved (not tested)."
            ) % names
        return messages.SUCCESS, _("Your %(service)s key was saved (not tested).") % names
    level = (
        messages.SUCCESS
        if result.ok or result.status is ProbeStatus.UNVERIFIABLE
        else messages.WARNING
    )
    if team is not None:
        text = _("The %(service)s key of %(team)s was saved. %(result)s")
    else:
        text = _("Your %(service)s key was saved. %(result)s")
    return level, text % {**names, "result": result.message}


@login_required
@require_POST
def test_key(request: HttpRequest, key_id: str, team_id: str | None = None) -> HttpResponse:
    team = managed_team(request, team_id)
    key = key_to_manage(request, key_id, team)
    try:
        with probes_paid_by(request.user):
            result = test_user_api_key(key, actor=request.user, request=request)
    except TooManyTests as refused:
        return done(
            request, messages.ERROR, too_many_tests(refused.wait), http_status=429, team=team
        )
    except (DecryptionError, UnknownService):
        return done(request, messages.ERROR, _("This key cannot be tested any more."), team=team)
    level = messages.SUCCESS if result.ok else messages.WARNING
    return done(
        request,
        level,
        result.message,
        team=team,
        status=result.status.value,
        status_label=key.get_status_display(),
    )


@login_required
@require_http_methods(["GET", "POST"])
def remove_key(request: HttpRequest, key_id: str, team_id: str | None = None) -> HttpResponse:
    """GET asks for confirmation (the page without JavaScript); POST removes."""
    team = managed_team(request, team_id)
    key = key_to_manage(request, key_id, team)
    if request.method == "GET":
        return page(request, "byok/remove_key.html", {"key": key, "team": team})
    remove_user_api_key(key, actor=request.user, request=request)
    return done(
        request, messages.SUCCESS, _("The key was removed and its secret erased."), team=team
    )


@login_required
@require_POST
def dismiss_banner(request: HttpRequest) -> HttpResponse:
    request.session[BANNER_DISMISSED] = True
    if wants_json(request):
        return JsonResponse({"ok": True})
    return redirect("byok:dashboard")


@login_required
@require_POST
def notification_settings(request: HttpRequest) -> HttpResponse:
    """Which notifications the user gets: the checked kinds on, the others off."""
    kinds = request.POST.getlist("kinds")
    if not set(kinds) <= set(NotificationKind.values):
        if wants_json(request):
            return done(
                request, messages.ERROR, _("Unknown kind of notification."), http_status=400
            )
        return HttpResponseBadRequest(_("Unknown kind of notification."))
    set_wanted(request.user, kinds)
    return done(request, messages.SUCCESS, _("Your notification settings were saved."))


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """Daily calls and estimated cost per service, user's keys against the platform's;
    with ``?team=<id>``, the calls on the team's keys: per member for its owners and
    admins, a member's own for a member."""
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    if days not in USAGE_WINDOWS:
        days = 30
    memberships, chosen = chosen_team(request)
    if chosen is not None:
        return team_usage(request, days, memberships, *chosen)
    window = usage_for(request.user, days=days)
    month = usage_for(request.user, days=timezone.localdate().day)
    models = [
        {**row, "service_name": service_name(row["service"])}
        for row in cost_by_model(request.user, days=days)
    ]
    return page(
        request,
        "byok/usage.html",
        {
            "days": days,
            "windows": USAGE_WINDOWS,
            "window": window,
            "services": usage_panels(window.rows, window.start, days),
            "month_totals": month_totals(month.rows),
            "models": models,
            "unpriced_calls": sum(row["unpriced_calls"] for row in models),
            **switcher_context(memberships, None, None, urlencode({"days": days})),
        },
    )


def team_usage(
    request: HttpRequest, days: int, memberships: list[tuple[Any, str]], team: Any, role: str
) -> HttpResponse:
    """The usage page for a team: per member and per service, over the window."""
    manages = role in teams.MANAGERS
    member = None if manages else request.user
    by_member = team_totals(team, by="user", days=days, member=member)
    by_service = team_totals(team, by="service", days=days, member=member)
    services = sorted(
        ({**row, "service_name": service_name(row["service"])} for row in by_service),
        key=lambda row: row["service_name"],
    )
    return page(
        request,
        "byok/usage.html",
        {
            "days": days,
            "windows": USAGE_WINDOWS,
            "members": member_rows(
                by_member,
                teams.adapter().members_of(team) if manages else [(request.user, role)],
            ),
            "team_services": services,
            "totals": {
                "calls": sum(row["calls"] or 0 for row in by_service),
                "cost": sum((row["cost"] or 0 for row in by_service), Decimal(0)),
            },
            **switcher_context(memberships, team, role, urlencode({"days": days})),
        },
    )


def member_rows(
    totals: list[dict[str, Any]], members: list[tuple[Any, str]]
) -> list[dict[str, Any]]:
    """One row per member (those without a call too), then per former member with
    calls in the window (``member`` ``None`` once their account is deleted)."""
    by_user = {row["user"]: row for row in totals}
    rows = [
        {
            "member": user,
            "role": TeamRole(role).label if role in TeamRole.values else role,
            "calls": by_user.get(user.pk, {}).get("calls") or 0,
            "cost": by_user.get(user.pk, {}).get("cost") or Decimal(0),
        }
        for user, role in members
    ]
    current = {user.pk for user, _role in members}
    left = [row for user_id, row in by_user.items() if user_id not in current]
    if left:
        users = get_user_model()._default_manager.in_bulk(
            [row["user"] for row in left if row["user"] is not None]
        )
        rows += [
            {
                "member": users.get(row["user"]),
                "role": _("no longer in the team"),
                "calls": row["calls"] or 0,
                "cost": row["cost"] or Decimal(0),
            }
            for row in left
        ]
    return rows


def service_name(service_id: str) -> str:
    """A service's name; its id for a service the site no longer has."""
    return registry.get(service_id).name if service_id in registry else service_id


def usage_panels(rows: list[dict[str, Any]], start: Any, days: int) -> list[dict[str, Any]]:
    """Per service: the two charts and the table behind them."""
    dates = [start + timedelta(days=offset) for offset in range(days)]
    index = {day: position for position, day in enumerate(dates)}
    figures: dict[str, dict[str, list[Any]]] = {}
    for row in rows:
        series = figures.setdefault(
            row["service"],
            {
                "user_calls": [0] * days,
                "platform_calls": [0] * days,
                "user_cost": [Decimal(0)] * days,
                "platform_cost": [Decimal(0)] * days,
            },
        )
        series[f"{row['source']}_calls"][index[row["date"]]] += row["calls"] or 0
        series[f"{row['source']}_cost"][index[row["date"]]] += row["cost"] or 0
    panels = []
    for service_id, series in sorted(figures.items()):
        name = service_name(service_id)
        panels.append(
            {
                "id": service_id,
                "name": name,
                "calls": BarChart(
                    f"byok-calls-{service_id}",
                    _("%(service)s: calls per day") % {"service": name},
                    _("Calls per day over the last %(days)d days, your keys and the platform's.")
                    % {"days": days},
                    dates,
                    [
                        Series(_("your keys"), "byok-bar-user", series["user_calls"]),
                        Series(_("platform key"), "byok-bar-platform", series["platform_calls"]),
                    ],
                ).render(),
                "cost": BarChart(
                    f"byok-cost-{service_id}",
                    _("%(service)s: estimated cost per day") % {"service": name},
                    _("Estimated cost per day over the last %(days)d days.") % {"days": days},
                    dates,
                    [
                        Series(_("your keys"), "byok-bar-user", series["user_cost"]),
                        Series(_("platform key"), "byok-bar-platform", series["platform_cost"]),
                    ],
                    unit_format="{:,.4f}",
                    whole_numbers=False,
                ).render(),
                "table": [
                    {
                        "date": day,
                        "user_calls": series["user_calls"][i],
                        "platform_calls": series["platform_calls"][i],
                        "cost": series["user_cost"][i] + series["platform_cost"][i],
                    }
                    for i, day in enumerate(dates)
                    if series["user_calls"][i] or series["platform_calls"][i]
                ],
            }
        )
    return panels


def month_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = totals.setdefault(
            row["service"],
            {
                "service": service_name(row["service"]),
                "user_calls": 0,
                "platform_calls": 0,
                "units": 0,
                "cost": Decimal(0),
            },
        )
        total[f"{row['source']}_calls"] += row["calls"] or 0
        total["units"] += row["units"] or 0
        total["cost"] += row["cost"] or 0
    return sorted(totals.values(), key=lambda total: total["service"])
