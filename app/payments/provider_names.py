"""The one list of payment provider names. Everything that names a provider asks here.

Imports nothing, so every domain may read it. (The HTTP clients in app.integrations keep
their own `PROVIDER` name: integrations import no business domain.)
"""

from __future__ import annotations

from typing import Literal, get_args

RoutedProvider = Literal["stripe", "kashier"]
"""Providers with a hosted checkout, webhooks, a business's own account and reconciliation."""
PaymentProvider = Literal[RoutedProvider, "cash", "sandbox"]

PAYMENT_PROVIDERS: tuple[PaymentProvider, ...] = get_args(PaymentProvider)
ROUTED_PROVIDERS: tuple[RoutedProvider, ...] = get_args(RoutedProvider)
STRIPE, KASHIER, CASH, SANDBOX = PAYMENT_PROVIDERS

ONLINE_PROVIDERS = frozenset({STRIPE, KASHIER, SANDBOX})
"""Money that moves online: a refund is asked of the provider (the sandbox answers itself)."""
PAY_AT_VENUE = frozenset({CASH})
