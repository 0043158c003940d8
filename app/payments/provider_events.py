"""Provider webhook payloads, verified by the route, turned into one normalised shape.

Pure functions: no I/O. Amounts are integer minor units; Kashier's decimal strings are parsed
exactly by the route's client module before they reach here (see `kashier_event`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
REFUND_RESULT = "refund_result"
CHARGE_REFUNDED = "charge_refunded"
DISPUTE = "dispute"
IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    provider: str
    event_id: str
    type: str
    payload: dict[str, Any]
    action: str = IGNORE
    tenant_id: uuid.UUID | None = None
    payment_id: uuid.UUID | None = None
    provider_ref: str | None = None
    charge_ref: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    reason: str | None = None
    refunds: tuple[RefundNotice, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RefundNotice:
    refund_id: uuid.UUID | None
    provider_ref: str | None
    amount_minor: int
    status: str


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


def stripe_event(event: dict[str, Any]) -> ProviderEvent:
    obj: dict[str, Any] = event.get("data", {}).get("object", {}) or {}
    kind = str(event.get("type", ""))
    metadata = obj.get("metadata") or {}
    base: dict[str, Any] = {
        "provider": "stripe",
        "event_id": str(event["id"]),
        "type": kind,
        "payload": event,
        "tenant_id": _uuid(metadata.get("tenant_id")),
        "payment_id": _uuid(metadata.get("payment_id")),
        "currency": str(obj.get("currency", "")).upper() or None,
    }
    parser = _STRIPE.get(kind)
    return parser(obj, base) if parser else ProviderEvent(**base)


def _pi_succeeded(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    return ProviderEvent(
        **base,
        action=SUCCEEDED,
        provider_ref=obj.get("id"),
        charge_ref=_id_of(obj.get("latest_charge")),
        amount_minor=int(obj.get("amount_received") or obj.get("amount") or 0),
    )


def _pi_failed(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    error = obj.get("last_payment_error") or {}
    return ProviderEvent(
        **base,
        action=FAILED,
        provider_ref=obj.get("id"),
        reason=str(error.get("message") or error.get("code") or "failed"),
    )


def _pi_canceled(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    return ProviderEvent(
        **base,
        action=CANCELLED,
        provider_ref=obj.get("id"),
        reason=str(obj.get("cancellation_reason") or "canceled"),
    )


def _session_completed(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    if obj.get("payment_status") != "paid":
        return ProviderEvent(**base)  # async methods settle later with their own event
    return ProviderEvent(
        **base,
        action=SUCCEEDED,
        provider_ref=_id_of(obj.get("payment_intent")),
        amount_minor=int(obj.get("amount_total") or 0),
    )


def _session_expired(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    return ProviderEvent(
        **base,
        action=CANCELLED,
        provider_ref=_id_of(obj.get("payment_intent")),
        reason="checkout expired",
    )


def _charge_refunded(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    notices = tuple(
        RefundNotice(
            _uuid((r.get("metadata") or {}).get("refund_id")),
            r.get("id"),
            int(r.get("amount") or 0),
            str(r.get("status")),
        )
        for r in (obj.get("refunds") or {}).get("data", []) or []
    )
    return ProviderEvent(
        **base,
        action=CHARGE_REFUNDED,
        provider_ref=_id_of(obj.get("payment_intent")),
        charge_ref=obj.get("id"),
        amount_minor=int(obj.get("amount_captured") or 0),
        refunds=notices,
    )


def _refund_updated(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    notice = RefundNotice(
        _uuid((obj.get("metadata") or {}).get("refund_id")),
        obj.get("id"),
        int(obj.get("amount") or 0),
        str(obj.get("status")),
    )
    return ProviderEvent(
        **base,
        action=REFUND_RESULT,
        provider_ref=_id_of(obj.get("payment_intent")),
        charge_ref=_id_of(obj.get("charge")),
        refunds=(notice,),
        reason=obj.get("failure_reason"),
    )


def _dispute(obj: dict[str, Any], base: dict[str, Any]) -> ProviderEvent:
    return ProviderEvent(
        **base,
        action=DISPUTE,
        provider_ref=_id_of(obj.get("payment_intent")),
        charge_ref=_id_of(obj.get("charge")),
        amount_minor=int(obj.get("amount") or 0),
        reason=obj.get("reason"),
    )


_STRIPE = {
    "payment_intent.succeeded": _pi_succeeded,
    "payment_intent.payment_failed": _pi_failed,
    "payment_intent.canceled": _pi_canceled,
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _session_completed,
    "checkout.session.expired": _session_expired,
    "charge.refunded": _charge_refunded,
    "refund.updated": _refund_updated,
    "refund.failed": _refund_updated,
    "charge.dispute.created": _dispute,
}


def kashier_event(payload: dict[str, Any], amount_minor: int | None) -> ProviderEvent:
    """Kashier's signature carries no timestamp: the event id (type, transaction, status) is
    what catches a replay, through the inbox's unique key."""
    data: dict[str, Any] = payload.get("data") or {}
    kind = str(payload.get("event", "unknown"))
    status = str(data.get("status", "")).upper()
    transaction = data.get("transactionId") or data.get("orderId") or data.get("merchantOrderId")
    base: dict[str, Any] = {
        "provider": "kashier",
        "event_id": f"{kind}:{transaction}:{status}",
        "type": kind,
        "payload": payload,
        "payment_id": _uuid(data.get("merchantOrderId")),
        "provider_ref": _id_of(data.get("orderId")),
        "currency": str(data.get("currency", "")).upper() or None,
        "amount_minor": amount_minor,
    }
    if kind == "pay" and status == "SUCCESS":
        return ProviderEvent(**base, action=SUCCEEDED, charge_ref=_id_of(transaction))
    if kind == "pay" and status in ("FAILURE", "FAILED"):
        return ProviderEvent(**base, action=FAILED, reason=str(data.get("message") or status))
    return ProviderEvent(**base)


def sandbox_event(event: dict[str, Any]) -> ProviderEvent:
    data: dict[str, Any] = event.get("data") or {}
    kind = str(event.get("type", ""))
    action = {
        "payment.succeeded": SUCCEEDED,
        "payment.failed": FAILED,
        "payment.cancelled": CANCELLED,
    }.get(kind, IGNORE)
    return ProviderEvent(
        provider="sandbox",
        event_id=str(event["id"]),
        type=kind,
        payload=event,
        action=action,
        tenant_id=_uuid(data.get("tenant_id")),
        payment_id=_uuid(data.get("payment_id")),
        provider_ref=str(event["id"]),
        amount_minor=int(data.get("amount_minor") or 0),
        currency=str(data.get("currency", "")).upper() or None,
        reason=data.get("reason"),
    )
