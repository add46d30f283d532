"""The pages: the API-keys dashboard, adding, testing and removing keys, and usage.

Every action is a plain form post (CSRF, Django messages, a redirect), so the pages
work without JavaScript. ``byok.js`` enhances them: it posts the same forms with
``Accept: application/json`` and gets JSON back instead of a redirect.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.contrib import messages
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
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from byok.budget_bars import budget_bars, covering
from byok.charts import BarChart, Series
from byok.conf import conf
from byok.exceptions import DecryptionError, KeyRejected, TooManyTests, UnknownService
from byok.forms import AddKeyForm, ImportForm
from byok.importing import ImportReport, import_file
from byok.key_age import key_age
from byok.keys import add_user_api_key, remove_user_api_key, test_user_api_key
from byok.models import NotificationKind, UserAPIKey
from byok.notifications import set_wanted, wanted_kinds
from byok.rate_limits import probes_paid_by, spend_test_budget, too_many_tests
from byok.results import ProbeResult, ProbeStatus
from byok.services.base import CATEGORIES, Service
from byok.services.registry import registry
from byok.stats import stats_for
from byok.usage import cost_by_model, usage_for

USAGE_WINDOWS = (7, 30, 90)
BANNER_DISMISSED = "byok_banner_dismissed"


def wants_json(request: HttpRequest) -> bool:
    """A request from byok.js (``Accept: application/json``), not a plain form post."""
    return request.headers.get("Accept", "").startswith("application/json")


def done(
    request: HttpRequest, level: int, text: str, *, http_status: int = 200, **data: Any
) -> HttpResponse:
    """Tell the user: a JSON answer for byok.js, else a message and back to the dashboard."""
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
    return redirect("byok:dashboard")


def page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(
        request, template, {"byok_base_template": conf.BASE_TEMPLATE, **context}, status=status
    )


def own_key(request: HttpRequest, key_id: str) -> UserAPIKey:
    """One of the signed-in user's keys; another user's key is a 404."""
    return get_object_or_404(UserAPIKey.objects.for_user(request.user), pk=key_id)


def reveal_url_template() -> str | None:
    """The REST API's reveal URL with ``{id}`` to fill in, if the host mounted the API."""
    placeholder = "00000000-0000-0000-0000-000000000000"
    try:
        return reverse("byok_api:apikey-reveal", args=[placeholder]).replace(placeholder, "{id}")
    except NoReverseMatch:
        return None


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The service grid: every service, with the user's keys for it."""
    category = request.GET.get("category", "")
    if category not in CATEGORIES:
        category = ""
    keys: dict[str, list[UserAPIKey]] = defaultdict(list)
    # At most BYOK["MAX_KEYS_PER_USER"], the newest: a page of bounded size and cost
    # even for a user who stored more before the cap existed.
    for key in (
        UserAPIKey.objects.for_user(request.user)
        .masked()
        .with_default_flag()
        .order_by("-created_at")[: conf.MAX_KEYS_PER_USER]
    ):
        key.age = key_age(key)
        keys[key.service].append(key)
    bars = budget_bars(request.user)
    cards = [
        {
            "service": service,
            "keys": keys.get(service.id, []),
            "form": AddKeyForm(service),
            "connected": any(key.is_active for key in keys.get(service.id, [])),
            "budgets": covering(bars, service.id),
            # Every card is on the page; the other categories' are hidden.
            "hidden": bool(category) and service.category != category,
        }
        for service in registry
    ]
    return page(
        request,
        "byok/dashboard.html",
        {
            "cards": cards,
            "categories": CATEGORIES,
            "category": category,
            "stats": stats_for(request.user),
            "show_banner": not request.session.get(BANNER_DISMISSED),
            "reveal_url": reveal_url_template() if conf.ALLOW_REVEAL else None,
            "notification_kinds": NotificationKind.choices,
            "notifications_wanted": wanted_kinds(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters()
@sensitive_variables()
def add_key(request: HttpRequest, service: str) -> HttpResponse:
    """The add-key form: its own page without JavaScript, the dialog's target with it."""
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
            with probes_paid_by(request.user):
                key = add_user_api_key(
                    request.user,
                    definition.id,
                    form.credentials(),
                    nickname=data["nickname"],
                    environment=data["environment"],
                    test=data["test"],
                    expires_at=form.expires_at(),
                    actor=request.user,
                    request=request,
                )
        except TooManyTests as refused:
            status = 429
            form.add_error(None, too_many_tests(refused.wait))
        except KeyRejected as rejected:
            result = rejected.probe_result
            form.add_error(None, rejected.probe_result.message)
        except ValidationError as error:
            form.add_validation_error(error)
        else:
            return done(request, *added_message(definition, key), key=str(key.pk), saved=True)
    if request.method == "POST":
        if wants_json(request):
            return JsonResponse(
                {
                    "ok": False,
                    "message": _("The key was not saved."),
                    "errors": form.errors_as_data(),
                    "test": None if result is None else result.as_dict(),
                },
                status=status,
            )
        return page(
            request, "byok/add_key.html", {"service": definition, "form": form}, status=status
        )
    return page(request, "byok/add_key.html", {"service": definition, "form": form})


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


def added_message(service: Service, key: UserAPIKey) -> tuple[int, str]:
    result = key.probe_result
    if result is None:
        return messages.SUCCESS, _("Your %(service)s key was saved (not tested).") % {
            "service": service.name
        }
    level = (
        messages.SUCCESS
        if result.ok or result.status is ProbeStatus.UNVERIFIABLE
        else messages.WARNING
    )
    return level, _("Your %(service)s key was saved. %(result)s") % {
        "service": service.name,
        "result": result.message,
    }


@login_required
@require_POST
def test_key(request: HttpRequest, key_id: str) -> HttpResponse:
    key = own_key(request, key_id)
    try:
        with probes_paid_by(request.user):
            result = test_user_api_key(key, actor=request.user, request=request)
    except TooManyTests as refused:
        return done(request, messages.ERROR, too_many_tests(refused.wait), http_status=429)
    except (DecryptionError, UnknownService):
        return done(request, messages.ERROR, _("This key cannot be tested any more."))
    level = messages.SUCCESS if result.ok else messages.WARNING
    return done(
        request,
        level,
        result.message,
        status=result.status.value,
        status_label=key.get_status_display(),
    )


@login_required
@require_http_methods(["GET", "POST"])
def remove_key(request: HttpRequest, key_id: str) -> HttpResponse:
    """GET asks for confirmation (the page without JavaScript); POST removes."""
    key = own_key(request, key_id)
    if request.method == "GET":
        return page(request, "byok/remove_key.html", {"key": key})
    remove_user_api_key(key, actor=request.user, request=request)
    return done(request, messages.SUCCESS, _("The key was removed and its secret erased."))


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
    """Daily calls and estimated cost per service, user's keys against the platform's."""
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    if days not in USAGE_WINDOWS:
        days = 30
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
        },
    )


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
