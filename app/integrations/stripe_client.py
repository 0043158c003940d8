"""Stripe through the official SDK, on OUR httpx.AsyncClient (so respx and timeouts apply).

Every write carries an Idempotency-Key derived from our own ids, so an outbox retry after a
crash replays Stripe's first answer instead of charging, refunding or paying out twice:
`checkout-{payment_id}`, `refund-{refund_id}`, `payout-{payout_id}`. Every object we create
carries the business and our ids in its metadata (`tenant_id` and `payment_id`/`refund_id`/
`payout_id`), and a payment on the platform account also names its business in the
PaymentIntent's `transfer_group` (`tenant:<id>`, copied to the charge), so reconciliation can
tell one business's balance transactions from another's. The SDK's own retries
are off (`max_network_retries=0`): the outbox owns retrying, with backoff, and needs to see
every failure classified (see `classify_stripe_error`).

Webhook verification is done here with hmac (Stripe's documented `t=...,v1=...` scheme)
rather than `stripe.Webhook.construct_event`, so `now` is injectable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import stripe

from app.integrations import webhook_signing
from app.integrations.errors import (
    InvalidSignature,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
    classify_status,
)
from app.money import Money

PROVIDER = "stripe"
DEFAULT_API_BASE = "https://api.stripe.com"
TENANT_GROUP_PREFIX = "tenant:"
# The code given to Stripe's refusal of a retry whose parameters differ from the first
# attempt's under the same Idempotency-Key: the first attempt may have succeeded.
IDEMPOTENCY_MISMATCH = "idempotency_error"


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str | None
    payment_intent_id: str | None


@dataclass(frozen=True, slots=True)
class PaymentIntentDetails:
    id: str
    status: str
    amount: Money
    amount_received_minor: int
    metadata: dict[str, str]
    charge_id: str | None
    balance_transaction_id: str | None
    fee_minor: int | None  # in the balance transaction's currency (the settlement currency)
    net_minor: int | None
    settlement_currency: str | None


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What an expanded balance-transaction source says about whose money it is."""

    id: str
    object: str | None
    metadata: dict[str, str]
    transfer_group: str | None
    # Ids the source points at: a refund's or dispute's charge and payment intent, a
    # reversal's transfer.
    related: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BalanceTransactionInfo:
    id: str
    type: str
    reporting_category: str | None
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    source: str | None
    status: str
    created: int
    fee_details: list[dict[str, Any]] = field(default_factory=list)
    expanded_source: SourceInfo | None = None  # with list_balance_transactions(expand_source)


@dataclass(frozen=True, slots=True)
class RefundResult:
    id: str
    status: str | None
    amount: Money
    payment_intent_id: str | None
    failure_reason: str | None


@dataclass(frozen=True, slots=True)
class TransferResult:
    id: str
    amount: Money
    destination: str | None
    balance_transaction_id: str | None


class _InjectedHTTPXClient(stripe.HTTPXClient):
    """stripe.HTTPXClient sending through a caller-owned httpx.AsyncClient."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        # timeout=None: the injected client's own timeout configuration applies.
        super().__init__(timeout=None)
        self._client_async = client


def classify_stripe_error(exc: stripe.StripeError) -> ProviderError:
    """Stripe's own `Stripe-Should-Retry` header wins; then the usual HTTP rules."""
    message = exc.user_message or str(exc) or type(exc).__name__
    if isinstance(exc, stripe.APIConnectionError):
        return RetryableProviderError(message, provider=PROVIDER)
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    code = exc.code or (IDEMPOTENCY_MISMATCH if isinstance(exc, stripe.IdempotencyError) else None)
    status = exc.http_status
    should_retry = headers.get("stripe-should-retry")
    if should_retry == "false":
        return PermanentProviderError(message, provider=PROVIDER, status=status, code=code)
    if status is None:
        return RetryableProviderError(message, provider=PROVIDER, code=code)
    return classify_status(
        PROVIDER,
        status,
        headers,
        message=message,
        code=code,
        retryable=should_retry == "true" or code == "lock_timeout",
    )


def tenant_transfer_group(tenant_id: UUID) -> str:
    """The business a payment on the platform account belongs to, in a field Stripe copies
    from the PaymentIntent to its charge and returns when a balance transaction's source is
    expanded (reconciliation filters on it)."""
    return f"{TENANT_GROUP_PREFIX}{tenant_id}"


def verify_webhook(
    raw_body: bytes, sig_header: str | None, secret: str, now: int, tolerance: int = 300
) -> dict[str, Any]:
    """Verify `Stripe-Signature` over the raw body and return the parsed event.

    Raises InvalidSignature when the header is missing/malformed, no v1 matches, the
    timestamp is more than `tolerance` seconds from `now`, or the body is not an event.
    """
    if sig_header is not None and not sig_header.isascii():
        # A v1 is hex: anything else cannot match, and compare_digest refuses non-ASCII str.
        raise InvalidSignature("signature header is not ASCII")
    webhook_signing.verify(raw_body, sig_header, secret, now=now, tolerance=tolerance)
    try:
        event = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidSignature("signed payload is not JSON (or nests too deeply)") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise InvalidSignature("signed payload is not a Stripe event")
    return event


class StripeGateway:
    """Thin async wrapper over stripe.StripeClient. One instance per API key."""

    def __init__(
        self,
        api_key: str,
        http: httpx.AsyncClient,
        *,
        api_base: str = DEFAULT_API_BASE,
        stripe_version: str | None = None,
    ) -> None:
        self._client = stripe.StripeClient(
            api_key,
            http_client=_InjectedHTTPXClient(http),
            base_addresses={"api": api_base},
            stripe_version=stripe_version,
            max_network_retries=0,
        )

    async def create_checkout_session(
        self,
        *,
        payment_id: UUID,
        booking_id: UUID,
        tenant_id: UUID,
        amount: Money,
        description: str,
        success_url: str,
        cancel_url: str,
        customer_email: str | None = None,
        expires_at: int | None = None,
    ) -> CheckoutSession:
        """Hosted Checkout for one booking payment; ids go into session AND intent metadata,
        the business also into the intent's transfer_group. Every parameter is a function
        of the arguments: a retry sends byte-identical parameters under the same key."""
        metadata = {
            "tenant_id": str(tenant_id),
            "booking_id": str(booking_id),
            "payment_id": str(payment_id),
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": str(payment_id),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "payment_intent_data": {
                "metadata": metadata,
                "description": description,
                "transfer_group": tenant_transfer_group(tenant_id),
            },
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": amount.currency.lower(),
                        "unit_amount": amount.amount_minor,
                        "product_data": {"name": description},
                    },
                }
            ],
        }
        if customer_email:
            params["customer_email"] = customer_email
        if expires_at is not None:
            params["expires_at"] = expires_at
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout-{payment_id}"},
            )
        )
        data = session.to_dict()
        return CheckoutSession(
            id=data["id"], url=data.get("url"), payment_intent_id=_id(data, "payment_intent")
        )

    async def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        session = await self._call(self._client.v1.checkout.sessions.retrieve_async(session_id))
        data: dict[str, Any] = session.to_dict()
        return data

    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentDetails:
        intent = await self._call(
            self._client.v1.payment_intents.retrieve_async(
                payment_intent_id, params={"expand": ["latest_charge.balance_transaction"]}
            )
        )
        data = intent.to_dict()
        charge = data.get("latest_charge")
        txn = charge.get("balance_transaction") if isinstance(charge, dict) else None
        return PaymentIntentDetails(
            id=data["id"],
            status=data["status"],
            amount=Money(data["amount"], data["currency"].upper()),
            amount_received_minor=data.get("amount_received") or 0,
            metadata=dict(data.get("metadata") or {}),
            charge_id=charge.get("id") if isinstance(charge, dict) else charge,
            balance_transaction_id=txn.get("id") if isinstance(txn, dict) else txn,
            fee_minor=txn.get("fee") if isinstance(txn, dict) else None,
            net_minor=txn.get("net") if isinstance(txn, dict) else None,
            settlement_currency=txn["currency"].upper() if isinstance(txn, dict) else None,
        )

    async def create_refund(
        self,
        *,
        payment_intent_id: str,
        amount_minor: int,
        refund_id: UUID,
        reason: str | None = None,
        tenant_id: UUID | None = None,
    ) -> RefundResult:
        metadata = {"refund_id": str(refund_id)}
        if tenant_id is not None:
            metadata["tenant_id"] = str(tenant_id)
        params: dict[str, Any] = {
            "payment_intent": payment_intent_id,
            "amount": amount_minor,
            "metadata": metadata,
        }
        if reason:
            params["reason"] = reason
        refund = await self._call(
            self._client.v1.refunds.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"refund-{refund_id}"},
            )
        )
        data = refund.to_dict()
        return RefundResult(
            id=data["id"],
            status=data.get("status"),
            amount=Money(data["amount"], data["currency"].upper()),
            payment_intent_id=_id(data, "payment_intent"),
            failure_reason=data.get("failure_reason"),
        )

    async def retrieve_balance_transaction(self, transaction_id: str) -> BalanceTransactionInfo:
        txn = await self._call(self._client.v1.balance_transactions.retrieve_async(transaction_id))
        return _balance_transaction(txn.to_dict())

    async def list_balance_transactions(
        self,
        *,
        created_gte: datetime,
        created_lt: datetime,
        page_size: int = 100,
        expand_source: bool = False,
    ) -> list[BalanceTransactionInfo]:
        """Every balance transaction created in [created_gte, created_lt), all pages;
        `expand_source` asks Stripe for each source object (whose money it is)."""
        window = {"gte": _unix(created_gte), "lt": _unix(created_lt)}
        params: dict[str, Any] = {"created": window, "limit": page_size}
        if expand_source:
            params["expand"] = ["data.source"]
        page = await self._call(
            self._client.v1.balance_transactions.list_async(
                params=params  # type: ignore[arg-type]
            )
        )
        result: list[BalanceTransactionInfo] = []
        try:
            async for txn in page.auto_paging_iter():
                result.append(_balance_transaction(txn.to_dict()))
        except stripe.StripeError as exc:
            raise classify_stripe_error(exc) from exc
        return result

    async def create_transfer(
        self,
        *,
        payout_id: UUID,
        amount: Money,
        destination: str,
        description: str | None = None,
        tenant_id: UUID | None = None,
    ) -> TransferResult:
        metadata = {"payout_id": str(payout_id)}
        if tenant_id is not None:
            metadata["tenant_id"] = str(tenant_id)
        params: dict[str, Any] = {
            "amount": amount.amount_minor,
            "currency": amount.currency.lower(),
            "destination": destination,
            "metadata": metadata,
            "transfer_group": f"payout-{payout_id}",
        }
        if description:
            params["description"] = description
        transfer = await self._call(
            self._client.v1.transfers.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"payout-{payout_id}"},
            )
        )
        data = transfer.to_dict()
        return TransferResult(
            id=data["id"],
            amount=Money(data["amount"], data["currency"].upper()),
            destination=_id(data, "destination"),
            balance_transaction_id=_id(data, "balance_transaction"),
        )

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except stripe.StripeError as exc:
            raise classify_stripe_error(exc) from exc


def _id(data: dict[str, Any], key: str) -> str | None:
    """An expandable field: either an id string or an expanded object with an id."""
    value = data.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime")
    return int(moment.timestamp())


def _balance_transaction(data: dict[str, Any]) -> BalanceTransactionInfo:
    return BalanceTransactionInfo(
        id=data["id"],
        type=data["type"],
        reporting_category=data.get("reporting_category"),
        amount_minor=data["amount"],
        fee_minor=data.get("fee") or 0,
        net_minor=data["net"],
        currency=data["currency"].upper(),
        source=_id(data, "source"),
        status=data.get("status") or "",
        created=data["created"],
        fee_details=list(data.get("fee_details") or []),
        expanded_source=_source_info(data.get("source")),
    )


def _source_info(source: Any) -> SourceInfo | None:
    if not isinstance(source, dict) or not isinstance(source.get("id"), str):
        return None
    metadata = source.get("metadata")
    related = (_id(source, key) for key in ("charge", "payment_intent", "transfer"))
    group = source.get("transfer_group")
    return SourceInfo(
        id=source["id"],
        object=source.get("object"),
        metadata={str(k): str(v) for k, v in (metadata or {}).items()}
        if isinstance(metadata, dict)
        else {},
        transfer_group=group if isinstance(group, str) else None,
        related=tuple(ref for ref in related if ref),
    )
