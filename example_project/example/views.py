from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.debug import sensitive_variables

from byok import NoAPIKey, resolve_api_key
from byok.models import UserAPIKey
from byok.services.base import mask_value
from byok.services.registry import registry


@login_required
def home(request: HttpRequest) -> HttpResponse:
    keys = UserAPIKey.objects.for_user(request.user).with_default_flag()
    return render(request, "example/home.html", {"keys": keys})


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    """A host's settings page: its Advanced tab holds byok's settings card."""
    tab = request.GET.get("tab", "advanced")
    return render(request, "example/settings.html", {"tab": tab})


@login_required
@sensitive_variables()
def feature(request: HttpRequest) -> HttpResponse:
    """Which key would serve a call to each service for the signed-in user.

    Each decrypted key stays in this frame's variables until the loop ends, so an
    error in a later lookup would put it in Django's error report: the frame is
    marked sensitive, as is every function here that holds a key.
    """
    rows = []
    for service in registry:
        try:
            resolved = resolve_api_key(request.user, service.id)
        except NoAPIKey as missing:
            rows.append({"service": service, "source": None, "why": str(missing)})
            continue
        value = resolved.value
        shown = resolved.key.masked_key if resolved.key else _mask(service, value)
        rows.append({"service": service, "source": resolved.source, "shown": shown})
    return render(request, "example/feature.html", {"rows": rows})


@sensitive_variables()
def _mask(service, value) -> str:
    return (
        service.mask(value) if isinstance(value, dict) else mask_value(value, service.key_prefixes)
    )
