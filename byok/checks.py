"""System checks. Each id is documented in docs/settings.md and has a test.

None of the messages ever shows a configured key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DatabaseError, connections, router
from django.utils.module_loading import import_string

from byok import teams, webhooks
from byok.budgets import default_rule
from byok.conf import DEFAULTS, RENDER_MESSAGES_CHOICES, conf
from byok.crypto import HOW_TO_CONFIGURE, KeyTooShort, MalformedKey, parse_key
from byok.models import Environment
from byok.services.base import CATEGORIES, DIFFICULTIES, RESERVED_FIELD_NAMES, Service
from byok.services.prices import Price
from byok.services.registry import BUILTIN_SERVICES, load_service, registry

NO_KEY = "BYOK['ENCRYPTION_KEYS'] is empty: byok cannot store or read any secret."


@register(Tags.security)
def check_encryption_keys(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    keys = conf.ENCRYPTION_KEYS
    if not keys and conf.KEYRING == "kms":
        return []  # data keys from the KMS encrypt: check_kms says whether it is set
    if not keys:
        if settings.DEBUG:
            return [Warning(NO_KEY, hint=HOW_TO_CONFIGURE, id="byok.W001")]
        return [Error(NO_KEY, hint=HOW_TO_CONFIGURE, id="byok.E001")]
    messages: list[CheckMessage] = []
    secrets_in_use = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    seen: set[bytes] = set()
    for position, key in enumerate(keys, start=1):
        where = f"BYOK['ENCRYPTION_KEYS'] entry {position}"
        try:
            raw = parse_key(key)
        except MalformedKey as error:
            messages.append(
                Error(f"{where} is malformed: {error}.", hint=HOW_TO_CONFIGURE, id="byok.E002")
            )
            continue
        except KeyTooShort as error:
            messages.append(
                Error(f"{where} is too short: {error}.", hint=HOW_TO_CONFIGURE, id="byok.E003")
            )
            continue
        if key in secrets_in_use:
            messages.append(
                Error(
                    f"{where} is the same as SECRET_KEY (or one of SECRET_KEY_FALLBACKS).",
                    hint="Use a separate key: rotating SECRET_KEY must never touch stored "
                    "secrets. " + HOW_TO_CONFIGURE,
                    id="byok.E004",
                )
            )
        if raw in seen:
            messages.append(Warning(f"{where} repeats an earlier key.", id="byok.W002"))
        seen.add(raw)
    return messages


@register(Tags.security, deploy=True)
def check_encryption_keys_for_deploy(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Under ``check --deploy`` a missing key is an error even with DEBUG on."""
    if not conf.ENCRYPTION_KEYS and conf.KEYRING != "kms" and settings.DEBUG:
        return [Error(NO_KEY, hint=HOW_TO_CONFIGURE, id="byok.E001")]
    return []


KEYRING_HINT = "See the Key management page of byok's documentation."


@register(Tags.security)
def check_kms(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``BYOK["KEYRING"]`` names a keyring there is, and ``BYOK["KMS"]`` a usable KMS."""
    if conf.KEYRING not in ("local", "kms"):
        return [
            Error(
                f"BYOK['KEYRING'] is {conf.KEYRING!r}: it must be 'local' or 'kms'.",
                hint=KEYRING_HINT,
                id="byok.E024",
            )
        ]
    options = conf.KMS
    if options is None:
        if conf.KEYRING == "kms":
            return [
                Error(
                    "BYOK['KEYRING'] is 'kms' but BYOK['KMS'] is not set.",
                    hint=KEYRING_HINT,
                    id="byok.E025",
                )
            ]
        return []
    from byok.kms import backend_for

    try:
        if not isinstance(options, Mapping):
            raise ImproperlyConfigured("BYOK['KMS'] must be a dict.")
        backend_for(options)
    except (ImproperlyConfigured, ImportError, KeyError, TypeError, ValueError) as error:
        return [Error(f"BYOK['KMS'] is not usable: {error}", hint=KEYRING_HINT, id="byok.E025")]
    return []


@register()
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = [
        Warning(
            f"BYOK[{name!r}] is not a byok setting.", hint="Check the spelling.", id="byok.W003"
        )
        for name in conf.unknown_names
    ]
    if conf.DEFAULT_ENVIRONMENT not in Environment.values:
        messages.append(
            Error(
                f"BYOK['DEFAULT_ENVIRONMENT'] must be one of {', '.join(Environment.values)}.",
                id="byok.E008",
            )
        )
    return [
        *messages,
        *_check_probe_timeout(),
        *_check_render_messages(),
        *_check_services(),
        *_check_prices(),
        *_check_default_budgets(),
        *_check_teams(),
        *_check_aliases(),
        *_check_reminder_days(),
        *_check_max_keys(),
        *_check_webhooks(),
    ]


def _check_max_keys() -> list[CheckMessage]:
    """byok.E023: the per-user cap on keys is a whole number of at least 1."""
    value = (getattr(settings, "BYOK", None) or {}).get("MAX_KEYS_PER_USER", 1)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return []
    return [
        Error(
            f"BYOK['MAX_KEYS_PER_USER'] must be a whole number of at least 1, not {value!r}.",
            hint="The default is 100.",
            id="byok.E023",
        )
    ]


def _check_aliases() -> list[CheckMessage]:
    """byok.E021: the cache and task backend byok's settings name must exist."""
    messages: list[CheckMessage] = []
    caches = getattr(settings, "CACHES", None) or {"default": {}}
    if conf.RATE_LIMIT_CACHE not in caches:
        messages.append(
            Error(
                f"BYOK['RATE_LIMIT_CACHE'] names {conf.RATE_LIMIT_CACHE!r}, which is not in "
                "CACHES.",
                hint="Caches: " + ", ".join(sorted(caches)),
                id="byok.E021",
            )
        )
    backends = getattr(settings, "TASKS", None) or {"default": {}}
    if conf.TASK_BACKEND not in backends:
        messages.append(
            Error(
                f"BYOK['TASK_BACKEND'] names {conf.TASK_BACKEND!r}, which is not in TASKS.",
                hint="Task backends: " + ", ".join(sorted(backends)),
                id="byok.E021",
            )
        )
    return messages


def _check_reminder_days() -> list[CheckMessage]:
    """byok.E022: reminder ages are whole days, or ``None`` for off."""
    user_settings = getattr(settings, "BYOK", None) or {}
    wrong = [
        name
        for name in ("ROTATION_REMINDER_DAYS", "UNUSED_REMINDER_DAYS")
        if user_settings.get(name) is not None and getattr(conf, name) is None
    ]
    thresholds = user_settings.get("EXPIRY_REMINDER_DAYS", [])
    if not isinstance(thresholds, list | tuple) or not all(
        isinstance(days, int) and not isinstance(days, bool) and days >= 0 for days in thresholds
    ):
        wrong.append("EXPIRY_REMINDER_DAYS")
    return [
        Error(
            f"BYOK[{name!r}] must be a whole number of days"
            + (
                " (each 0 or more)."
                if name == "EXPIRY_REMINDER_DAYS"
                else " (1 or more), or None."
            ),
            id="byok.E022",
        )
        for name in wrong
    ]


#: Caches that count in the memory of one process (or not at all).
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.security, Tags.caches, deploy=True)
def check_rate_limit_cache(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """byok.W004, under ``check --deploy``: the budgets must be counted where every
    process sees them."""
    caches = getattr(settings, "CACHES", None) or {}
    backend = caches.get(conf.RATE_LIMIT_CACHE, {}).get(
        "BACKEND", "django.core.cache.backends.locmem.LocMemCache"
    )
    if settings.DEBUG or backend not in PROCESS_LOCAL_CACHES:
        return []
    name = backend.rsplit(".", 1)[-1]
    return [
        Warning(
            f"BYOK['RATE_LIMIT_CACHE'] ({conf.RATE_LIMIT_CACHE!r}) is {name}: "
            "each web process counts its own byok_test and byok_reveal budgets (or none).",
            hint="Point it at a cache every process shares, such as Django's RedisCache "
            "(see 'Running at scale' in byok's documentation).",
            id="byok.W004",
        )
    ]


#: The sources ``BYOK["RESOLUTION_ORDER"]`` may list.
SOURCES = ("user", "team", "platform")


def _check_webhooks() -> list[CheckMessage]:
    """byok.E026 to E029: ``BYOK["WEBHOOKS"]`` and the settings of their delivery. No
    message ever quotes a webhook's secret."""
    messages = _check_webhook_delivery()
    hooks = _get("WEBHOOKS")
    if not isinstance(hooks, list | tuple):
        return [
            *messages,
            Error("BYOK['WEBHOOKS'] must be a list.", hint=WEBHOOK_SHAPE, id="byok.E026"),
        ]
    hosts_listed = isinstance(_get("WEBHOOK_ALLOWED_HOSTS"), list | tuple)
    seen: set[str] = set()
    for position, entry in enumerate(hooks, start=1):
        where = f"BYOK['WEBHOOKS'] entry {position}"
        problems = webhooks.entry_problems(entry)
        if problems:
            messages.append(
                Error(f"{where}: {'; '.join(problems)}.", hint=WEBHOOK_SHAPE, id="byok.E026")
            )
            continue
        url = entry["url"]
        if url in seen:
            messages.append(Error(f"{where} repeats an earlier URL.", id="byok.E026"))
        seen.add(url)
        refusal = webhooks.url_refusal(url) if hosts_listed else None
        if refusal is not None:
            plain = refusal == "plain http"
            messages.append(
                Error(
                    f"{where} posts to {refusal}"
                    + (": events and signatures would travel unencrypted." if plain else "."),
                    hint="Use https to a public host, or list the host in "
                    "BYOK['WEBHOOK_ALLOWED_HOSTS'] if it is an internal receiver.",
                    id="byok.E027" if plain else "byok.E028",
                )
            )
    return messages


def _check_webhook_delivery() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    attempts = _get("WEBHOOK_MAX_ATTEMPTS")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        messages.append(
            Error(
                "BYOK['WEBHOOK_MAX_ATTEMPTS'] must be a whole number from 1 to 20.",
                id="byok.E029",
            )
        )
    delay = _get("WEBHOOK_RETRY_DELAY")
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 < delay <= 3600:
        messages.append(
            Error(
                "BYOK['WEBHOOK_RETRY_DELAY'] must be a number of seconds, more than 0 and at "
                "most 3600.",
                id="byok.E029",
            )
        )
    allowed = _get("WEBHOOK_ALLOWED_HOSTS")
    if not isinstance(allowed, list | tuple) or not all(isinstance(h, str) for h in allowed):
        messages.append(
            Error("BYOK['WEBHOOK_ALLOWED_HOSTS'] must be a list of host names.", id="byok.E029")
        )
    return messages


WEBHOOK_SHAPE = (
    'Shape: [{"url": "https://example.com/hooks/byok", '
    '"secret": os.environ["BYOK_WEBHOOK_SECRET"], '
    f'"events": ["{webhooks.THRESHOLD_REACHED}"]}}]; events: {", ".join(webhooks.EVENTS)}.'
)


def _get(name: str) -> Any:
    """A ``BYOK`` setting as written (or its default), before the typed view reads it."""
    return (getattr(settings, "BYOK", None) or {}).get(name, DEFAULTS[name])


def _check_teams() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    order = conf._get("RESOLUTION_ORDER")
    if (
        not isinstance(order, list | tuple)
        or not order
        or len(set(order)) != len(order)
        or not all(isinstance(source, str) and source in SOURCES for source in order)
    ):
        messages.append(
            Error(
                "BYOK['RESOLUTION_ORDER'] must list some of "
                f"{', '.join(map(repr, SOURCES))}, each once.",
                hint='The default is ["user", "team", "platform"]: the user\'s own key first.',
                id="byok.E019",
            )
        )
    try:
        teams.adapter()
    except ImproperlyConfigured as error:
        messages.append(Error(str(error), obj="BYOK['TEAM_ADAPTER']", id="byok.E020"))
    chooser = conf.CURRENT_TEAM
    if isinstance(chooser, str):
        try:
            chooser = import_string(chooser)
        except ImportError as error:
            chooser = error
    if chooser is not None and not callable(chooser):
        messages.append(
            Error(
                "BYOK['CURRENT_TEAM'] must be a callable (user, request) -> team or None, "
                "or its import path.",
                id="byok.E020",
            )
        )
    return messages


def _load_errors() -> list[CheckMessage]:
    """byok.E006 for each service class that cannot be loaded."""
    messages: list[CheckMessage] = []
    for path in [*BUILTIN_SERVICES, *conf.SERVICES]:
        try:
            load_service(path)
        except ImproperlyConfigured as error:
            messages.append(Error(str(error), obj="BYOK['SERVICES']", id="byok.E006"))
    return messages


def _check_services() -> list[CheckMessage]:
    messages = _load_errors()
    if messages:
        return messages
    known = {load_service(path).id for path in [*BUILTIN_SERVICES, *conf.SERVICES]}
    known.update(service.id for service in registry.registered)
    for service_id in conf.DISABLED_SERVICES:
        if service_id not in known:
            messages.append(_unknown_service("DISABLED_SERVICES", service_id))
    for service_id, url in conf.BASE_URLS.items():
        if service_id not in registry:
            messages.append(_unknown_service("BASE_URLS", service_id))
            continue
        messages.extend(_check_base_url(service_id, url))
    for service_id, value in conf.PLATFORM_KEYS.items():
        if service_id not in registry:
            messages.append(_unknown_service("PLATFORM_KEYS", service_id))
            continue
        service = registry.get(service_id)
        try:
            service.normalize(value)
        except ValidationError as error:
            fields = (
                ", ".join(sorted(error.message_dict)) if hasattr(error, "error_dict") else "value"
            )
            messages.append(
                Error(
                    f"BYOK['PLATFORM_KEYS'][{service_id!r}] does not fit the service ({fields}).",
                    hint=f"Fields of {service_id}: {', '.join(service.field_names)}.",
                    id="byok.E007",
                )
            )
    return messages


def _check_prices() -> list[CheckMessage]:
    prices = conf.PRICES
    if not isinstance(prices, dict):
        return [_bad_prices("must be a dict of service ids to models to prices")]
    messages: list[CheckMessage] = []
    for service_id, models in prices.items():
        if service_id not in registry:
            messages.append(_unknown_service("PRICES", service_id))
        elif not isinstance(models, dict):
            messages.append(_bad_prices(f"[{service_id!r}] must be a dict of models to prices"))
        else:
            for model, price in models.items():
                try:
                    Price.of(price)
                except (TypeError, ValueError, AttributeError) as error:
                    messages.append(_bad_prices(f"[{service_id!r}][{model!r}]: {error}"))
    return messages


def _check_default_budgets() -> list[CheckMessage]:
    entries = conf.DEFAULT_BUDGETS
    messages: list[CheckMessage] = []
    names: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        try:
            if not isinstance(entry, dict):
                raise ValueError("it must be a dict")
            rule = default_rule(entry)
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            problem = f"the key {error}" if isinstance(error, KeyError) else error
            messages.append(
                Error(
                    f"BYOK['DEFAULT_BUDGETS'] entry {position} is not a budget: {problem}.",
                    hint='Shape: {"name": "free-allowance", "limit": "5.00", "period": '
                    '"month", "applies_to": "platform", "action": "block"}.',
                    id="byok.E018",
                )
            )
            continue
        if rule.name in names:
            messages.append(
                Error(
                    f"BYOK['DEFAULT_BUDGETS'] names {rule.name!r} twice.",
                    id="byok.E018",
                )
            )
        names.add(rule.name)
    return messages


def _bad_prices(problem: str) -> Error:
    return Error(
        f"BYOK['PRICES']{problem}.",
        hint='Shape: {"openai": {"my-model": {"input": "2.50", "output": "10.00"}}}, '
        "USD per million tokens (input, output, cached_input, cache_write) or per unit.",
        id="byok.E017",
    )


def _check_base_url(service_id: str, url: object) -> list[CheckMessage]:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"BYOK['BASE_URLS'][{service_id!r}] must be an absolute http(s) URL.",
                id="byok.E009",
            )
        ]
    if parts.query or parts.fragment or parts.username or parts.password:
        return [
            Error(
                f"BYOK['BASE_URLS'][{service_id!r}] must not carry credentials, a query or "
                "a fragment.",
                id="byok.E009",
            )
        ]
    if parts.scheme == "http" and not conf.ALLOW_PRIVATE_BASE_URLS:
        return [
            Error(
                f"BYOK['BASE_URLS'][{service_id!r}] is plain http: credentials would travel "
                "unencrypted.",
                hint="Use https, or set BYOK['ALLOW_PRIVATE_BASE_URLS'] = True for an internal "
                "host.",
                id="byok.E010",
            )
        ]
    return []


def _check_probe_timeout() -> list[CheckMessage]:
    value = conf.PROBE_TIMEOUT
    numbers = list(value) if isinstance(value, list | tuple) else [value]
    fits = len(numbers) in (1, 2) and all(
        isinstance(n, int | float) and not isinstance(n, bool) and 0 < n <= 120 for n in numbers
    )
    if fits:
        return []
    return [
        Error(
            "BYOK['PROBE_TIMEOUT'] must be a number of seconds or a (connect, read) pair, "
            "each between 0 and 120.",
            id="byok.E011",
        )
    ]


def _check_render_messages() -> list[CheckMessage]:
    value = conf.RENDER_MESSAGES
    if isinstance(value, bool | str) and value in RENDER_MESSAGES_CHOICES:
        return []
    return [
        Error(
            "BYOK['RENDER_MESSAGES'] must be True, False or \"auto\".",
            hint='"auto" shows the messages your base template has not shown already.',
            id="byok.E016",
        )
    ]


def _unknown_service(setting: str, service_id: object) -> Error:
    return Error(
        f"BYOK[{setting!r}] names {service_id!r}, which is not a registered service.",
        hint="Registered services: " + ", ".join(sorted(service.id for service in registry)),
        id="byok.E005",
    )


@register()
def check_service_declarations(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Every registered service's declaration, as django-cors-headers checks its settings:
    a host's own service that is wrong fails ``manage.py check``, not a request."""
    if _load_errors():
        return []  # the services cannot all be loaded: byok.E006 says why
    messages: list[CheckMessage] = []
    claimed: dict[str, str] = {}
    for service in registry:
        messages += _check_catalog_values(service) + _check_field_names(service)
        for name in service.env + tuple(v for f in service.fields for v in f.env):
            other = claimed.setdefault(name, service.id)
            if other != service.id:
                messages.append(
                    Error(
                        f"Services {other!r} and {service.id!r} both read the environment "
                        f"variable {name!r}.",
                        hint="An imported .env file must name one service per variable.",
                        obj=type(service),
                        id="byok.E015",
                    )
                )
    return messages


def _check_catalog_values(service: Service) -> list[CheckMessage]:
    wrong = []
    if service.category not in CATEGORIES:
        wrong.append(f"category {service.category!r} (one of {', '.join(CATEGORIES)})")
    if service.difficulty not in DIFFICULTIES:
        wrong.append(f"difficulty {service.difficulty!r} (one of {', '.join(DIFFICULTIES)})")
    return [
        Error(f"Service {service.id!r} has an unknown {what}.", obj=type(service), id="byok.E012")
        for what in wrong
    ]


def _check_field_names(service: Service) -> list[CheckMessage]:
    names = service.field_names
    messages: list[CheckMessage] = []
    for name in sorted({n for n in names if n in RESERVED_FIELD_NAMES or names.count(n) > 1}):
        messages.append(
            Error(
                f"Service {service.id!r} has a field named {name!r} twice, or a name the "
                f"add-key form keeps for itself ({', '.join(RESERVED_FIELD_NAMES)}).",
                obj=type(service),
                id="byok.E014",
            )
        )
    declared = {
        "formats": list(service.formats),
        "refusals": [refusal.field for refusal in service.refusals],
        "cautions": [caution.field for caution in service.cautions],
        "swaps": [name for pair in service.swaps for name in pair],
        "together": [name for group in service.together for name in group],
        "hint_field": [service.hint_field] if service.hint_field else [],
    }
    for attribute, used in declared.items():
        for name in sorted(set(used) - set(names)):
            messages.append(
                Error(
                    f"Service {service.id!r} names a field it does not have in "
                    f"{attribute}: {name!r}.",
                    hint=f"Its fields: {', '.join(names)}.",
                    obj=type(service),
                    id="byok.E013",
                )
            )
    for first, second in service.swaps:
        if first not in service.formats or second not in service.formats:
            messages.append(
                Error(
                    f"Service {service.id!r} declares swaps of {first!r} and {second!r}, "
                    "which need a format each.",
                    obj=type(service),
                    id="byok.E013",
                )
            )
    return messages


RLS_HINT = "See the Row-level security page of byok's documentation."
RLS_MIDDLEWARE = "byok.middleware.RowLevelSecurityMiddleware"


@register(Tags.security)
def check_row_level_security(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """byok.E030: row-level security on a database that is not PostgreSQL; byok.E032:
    without the middleware that tells the database whose request it is."""
    if not conf.POSTGRES_ROW_LEVEL_SECURITY:
        return []
    from byok.models import UserAPIKey

    messages: list[CheckMessage] = []
    for alias in sorted({router.db_for_read(UserAPIKey), router.db_for_write(UserAPIKey)}):
        vendor = connections[alias].vendor
        if vendor != "postgresql":
            messages.append(
                Error(
                    f"BYOK['POSTGRES_ROW_LEVEL_SECURITY'] is on but byok's database "
                    f"{alias!r} is {vendor}: row-level security needs PostgreSQL.",
                    hint="Turn the setting off, or keep byok's tables on PostgreSQL.",
                    id="byok.E030",
                )
            )
    if RLS_MIDDLEWARE not in settings.MIDDLEWARE:
        messages.append(
            Error(
                f"BYOK['POSTGRES_ROW_LEVEL_SECURITY'] is on but {RLS_MIDDLEWARE} is not in "
                "MIDDLEWARE: no request would see any of byok's rows.",
                hint="Add it after django.contrib.auth.middleware.AuthenticationMiddleware.",
                id="byok.E032",
            )
        )
    return messages


@register(Tags.security, Tags.database)
def check_row_level_security_role(
    app_configs: Sequence[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """byok.E031: the connection's role would not be held by the policies (a superuser,
    BYPASSRLS, or the owner of tables without FORCE); byok.W005: tables not protected
    yet. Run by ``migrate`` and ``check --database``, which may query the database."""
    if not conf.POSTGRES_ROW_LEVEL_SECURITY or not databases:
        return []
    from byok import rls, rls_policies

    messages: list[CheckMessage] = []
    for alias in rls.aliases():
        if alias not in databases:
            continue
        try:
            role = rls_policies.current_role(connections[alias])
            states = rls_policies.states(connections[alias])
        except DatabaseError:
            continue  # Django's own checks report a database it cannot reach
        if role.superuser or role.bypasses:
            what = "a superuser" if role.superuser else "allowed to BYPASSRLS"
            messages.append(
                Error(
                    f"Database {alias!r} connects as {role.name}, {what}: row-level "
                    "security does not apply to it.",
                    hint="Connect the site as a role without SUPERUSER and BYPASSRLS "
                    "(run migrate as another role, or with --skip-checks). " + RLS_HINT,
                    id="byok.E031",
                )
            )
        unforced = [s.table for s in states if s.owner == role.name and not s.forced]
        if unforced:
            messages.append(
                Error(
                    f"Database {alias!r} connects as {role.name}, which owns "
                    f"{', '.join(unforced)} without FORCE ROW LEVEL SECURITY: the policies "
                    "do not hold for the owner.",
                    hint="Run manage.py byok_row_level_security enable. " + RLS_HINT,
                    id="byok.E031",
                )
            )
        unprotected = [s.table for s in states if s.exists and not s.protected]
        if unprotected and not unforced:
            messages.append(
                Warning(
                    f"Row-level security is not in force on {', '.join(unprotected)} "
                    f"in database {alias!r}.",
                    hint="Run manage.py byok_row_level_security enable. " + RLS_HINT,
                    id="byok.W005",
                )
            )
    return messages
