"""Which Stripe account a webhook speaks for, the secret that verifies it, and the business
it is bound to. Reads only: nothing is written before the signature is checked.

- `POST /webhooks/stripe` is the platform account's endpoint, verified with the platform's
  secret only. An event about a business with its own Stripe account is refused there (400
  wrong_webhook_endpoint): that business's account signs its own events, which arrive at
- `POST /webhooks/stripe/{tenant_id}`, verified with that business's own webhook secret only
  (never the platform's, never by trying every secret; 404 when it saved none). The event is
  stored bound to the business: one naming another business's payment (by our metadata or by
  Stripe's references) is never applied ("rejected: unknown payment", by the applier).
"""

from __future__ import annotations

import time
import uuid

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DependencyUnavailable, DomainError, NotFound
from app.gateways.accounts import has_own_account
from app.integrations import stripe_client
from app.integrations.crypto import DecryptionFailed
from app.payments import provider_events as events
from app.payments.queries import payment_tenant
from app.tenant_settings.sealing import Sealer
from app.tenant_settings.service import ProviderConfig, load_provider_config

log = structlog.get_logger()

PROVIDER = "stripe"


class WrongWebhookEndpoint(DomainError):
    slug = "wrong_webhook_endpoint"
    title = "This event belongs to a business with its own Stripe account and endpoint"


class StripeEndpointNotFound(NotFound):
    slug = "webhook_endpoint_not_found"
    title = "This business has no Stripe webhook secret of its own"


def webhook_path(tenant_id: uuid.UUID) -> str:
    return f"/webhooks/stripe/{tenant_id}"


async def platform_event(
    session: AsyncSession, box: Sealer, secret: str, raw: bytes, header: str | None
) -> events.ProviderEvent:
    """Verify with the platform's secret; refuse an event of a business with its own
    account. Raises InvalidSignature or WrongWebhookEndpoint."""
    event = events.stripe_event(stripe_client.verify_webhook(raw, header, secret, int(time.time())))
    for tenant_id in await _named_tenants(session, event):
        config = await _config(session, box, tenant_id)
        if has_own_account(PROVIDER, config.credentials):
            log.warning(
                "webhook.stripe_wrong_endpoint", tenant_id=str(tenant_id), event_id=event.event_id
            )
            raise WrongWebhookEndpoint(
                "Events of a business with its own Stripe account are verified at its own endpoint",
                endpoint=webhook_path(tenant_id),
            )
    return event


async def business_event(
    session: AsyncSession, box: Sealer, tenant_id: uuid.UUID, raw: bytes, header: str | None
) -> events.ProviderEvent:
    """Verify with the business's own secret. Raises StripeEndpointNotFound or
    InvalidSignature. The event is stored bound to the business; the applier applies it to
    nothing when it names another business's payment (app/bookings/payment_events.py), so
    this acknowledgement reads no payment."""
    secret = (await _config(session, box, tenant_id)).credentials.get("webhook_secret")
    if not secret:
        raise StripeEndpointNotFound(tenant_id=tenant_id)
    return events.stripe_event(stripe_client.verify_webhook(raw, header, secret, int(time.time())))


async def _named_tenants(session: AsyncSession, event: events.ProviderEvent) -> set[uuid.UUID]:
    """Every business the event names: in our metadata, through our payment id, or through
    Stripe's references to a payment (narrow SECURITY DEFINER lookups)."""
    named = {event.tenant_id} if event.tenant_id else set()
    if event.payment_id is not None:
        owner = await payment_tenant(session, event.payment_id)
        if owner is not None:
            named.add(owner)
    refs = [ref for ref in (event.provider_ref, event.charge_ref) if ref]
    if refs:
        async with session.begin():
            for ref in refs:
                row = (
                    await session.execute(
                        text("SELECT * FROM payment_by_provider_ref(:p, :r)"),
                        {"p": PROVIDER, "r": ref},
                    )
                ).first()
                if row is not None:
                    named.add(row.tenant_id)
    return named


async def _config(session: AsyncSession, box: Sealer, tenant_id: uuid.UUID) -> ProviderConfig:
    try:
        return await load_provider_config(session, tenant_id, PROVIDER, box)
    except DecryptionFailed:
        # Sealed under a secret this deployment no longer has: nothing to verify with until
        # the owner saves the keys again, so Stripe should deliver again later.
        log.warning("webhook.stripe_keys_unreadable", tenant_id=str(tenant_id))
        raise DependencyUnavailable(
            "The business's Stripe keys cannot be read; deliver again later"
        ) from None
