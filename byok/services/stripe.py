"""Stripe: one secret (sk_) or restricted (rk_) key."""

from byok.services.base import Service


class Stripe(Service):
    id = "stripe"
    name = "Stripe"
    category = "payment"
    key_prefixes = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
