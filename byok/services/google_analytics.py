"""Google Analytics 4: a measurement id and a Measurement Protocol API secret.

Google offers no read-only way to test the secret: the collection endpoint
answers 2xx to anything and its validation server "does not validate
api_secret". So the probe checks nothing remotely and says so.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from byok.services.auth import QueryParameters
from byok.services.base import CredentialField, Service
from byok.services.formats import Format, Refusal


class GoogleAnalytics(Service):
    id = "google_analytics"
    name = "Google Analytics"
    category = "analytics"
    description = _("Send server-side events to a GA4 property with the Measurement Protocol.")
    icon = "byok/icons/google_analytics.svg"
    docs_url = "https://developers.google.com/analytics/devguides/collection/protocol/ga4"
    create_key_url = "https://analytics.google.com/"
    pricing = _("Free for standard GA4 properties; Google Analytics 360 is a paid plan.")
    free_tier = _("Standard GA4 properties are free, within Google's collection limits.")
    setup_minutes = 4
    difficulty = "medium"
    benefits = (
        _("Events land in your own GA4 property"),
        _("Reports and exports under your Google account"),
        _("Your own retention and access settings"),
        _("Server-side events that ad blockers cannot drop"),
    )
    setup_steps = (
        _("In Google Analytics, open Admin, then “Data streams”, and choose your stream."),
        _("Copy the stream's Measurement ID (it starts with G-)."),
        _("Open “Measurement Protocol API secrets”, choose “Create” and copy the secret."),
    )
    fields = (
        CredentialField(
            "measurement_id",
            _("Measurement ID"),
            env=("GA_MEASUREMENT_ID", "GOOGLE_ANALYTICS_MEASUREMENT_ID"),
            secret=False,
            help_text=_("Starts with G-, shown on the data stream's page."),
        ),
        CredentialField(
            "api_secret",
            _("Measurement Protocol API secret"),
            env=("GA_API_SECRET", "GOOGLE_ANALYTICS_API_SECRET"),
            help_text=_("Created under the data stream's “Measurement Protocol API secrets”."),
        ),
    )
    formats = {
        "measurement_id": Format(
            loose=r"G-[A-Z0-9]{4,16}",
            strict=r"G-[A-Z0-9]{10}",
            shape=_("G- followed by 4 to 16 capital letters or digits"),
            strict_note=_(
                "GA4 Measurement IDs are usually G- followed by 10 capital letters or digits: "
                "check that the ID was copied whole."
            ),
        ),
        # No documented format: observed secrets are 22 URL-safe characters, too
        # little to warn about any other length.
        "api_secret": Format(
            loose=r"[A-Za-z0-9_-]{16,64}",
            shape=_("16 to 64 letters, digits, - or _"),
        ),
    }
    base_url = "https://www.google-analytics.com"
    authentication = QueryParameters(
        {"measurement_id": "measurement_id", "api_secret": "api_secret"}
    )

    refusals = (
        Refusal(
            "measurement_id",
            r"(?i:UA-).*",
            _(
                "This is a Universal Analytics ID (UA-…). Google has retired Universal "
                "Analytics; GA4 Measurement IDs start with G-."
            ),
        ),
        # Google's documentation placeholders (G-XXXXXXX, G-XXXXXXXXXX); runs of eight or
        # more X are already refused by the generic placeholder check.
        Refusal(
            "measurement_id",
            r"(?i:G-X+)",
            _("The Measurement ID is Google's placeholder; copy the one of your stream."),
            code="placeholder",
        ),
    )
    unverifiable_reason = _(
        "Google offers no way to check a Measurement Protocol API secret without "
        "sending an event, so byok checked its format only. To be sure, send a test "
        "event and look for it in GA4's DebugView."
    )
