"""Kashier (Egypt) over httpx: payment sessions, status queries, refunds, webhook signatures.

Sources checked (via the search tool, Nov 2026), since Kashier's reference lives on
developers.kashier.io and in its demo repositories:
- Kashier's Node reference for webhooks (quoted in public integrations, e.g. the
  `Kashier-payments/NodeJs-Checkout-Demo` family and several production ports): sort
  `data.signatureKeys`, pick those fields, `queryString.stringify(picked)`, HMAC-SHA256 with
  the *Payment API key*, lowercase hex, compared with the `x-kashier-signature` header.
  query-string's defaults encode values strictly (RFC 3986, `!'()*` escaped, space=%20);
  Node's built-in `querystring` leaves `!'()*` alone, so both encodings are accepted.
- Payment Sessions v3: `POST {api}/v3/payment/sessions`, headers `Authorization: <secret
  key>` and `api-key: <payment api key>`; body fields merchantId, amount (decimal string),
  currency, order (our order id, echoed back as merchantOrderId), merchantRedirect,
  serverWebhook, expireAt, maxFailureAttempts, display, type, paymentType, allowedMethods,
  customer{email, reference}; the response carries `_id` and `sessionUrl`
  (several public Laravel/Node/Python integrations agree on this shape).
- Session payment status: `GET {api}/v3/payment/sessions/{id}/payment`.
- One order by our merchant order id: `GET {api}/payments/orders/{merchantOrderId}`
  (developers.kashier.io "Order Reconciliation / Retrieve Order Details", and Kashier's own
  NodeJs-Checkout-Demo README): `{"status": "SUCCESS", "response": {merchantOrderId,
  totalRefundedAmount, status, transactions: [{transactionId, operation ("pay", "refund"...),
  status ("SUCCESS", "FAILURE"...), amount (a decimal in major units), currency,
  requestDate, responseDate}]}}`. An unknown order answers 404 or `"status": "FAILURE"`.
- Refund: `PUT {fep}/v3/orders/{kashierOrderId}/` with `{"apiOperation": "REFUND",
  "reason", "transaction": {"amount"}}` and `Authorization: <secret key>`; the outcome is in
  `response.status` (documented as "SUCCESS"; public integrations also see "REFUNDED" /
  "PARTIALLY_REFUNDED" for a refund that went through) next to `response.transactionId`.
  The `fep` host is separate from the `api` host (test-fep for test).
- The query parameters of the orders listing (`from`, `to`, `page`, `limit`) are not
  confirmed by a primary source: treat `list_transactions` as best effort and check it
  against the dashboard export before relying on it for reconciliation.

Kashier takes NO idempotency key, and its refund body documents no field for the merchant's
own reference: the free-text `reason` is the only place our refund id can travel, so
`create_refund(reference=...)` appends it there, identically on every attempt. Whether the
order's transactions echo the reason back is not documented. So a caller that retries an
attempt whose outcome is unknown must first `get_order` and look for *its* refund with
`find_refund`: by that reference, else by the transaction id it recorded from an earlier
answer — never "some refund of this amount" (`unclaimed_refunds` lists the ones nobody can
tell apart, for the caller to stop on). The webhook signature carries no timestamp: replays
must be caught by the inbox's unique event key, not here.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from app.integrations.errors import InvalidSignature, PermanentProviderError, response_json, send
from app.money import Money, currency_exponent

PROVIDER = "kashier"
DEFAULT_API_BASE = "https://api.kashier.io"
DEFAULT_FEP_BASE = "https://fep.kashier.io"
SIGNATURE_HEADER = "x-kashier-signature"
# A signature over a key set that omits any of these proves nothing about which order was
# paid, how much, or whether it succeeded.
REQUIRED_SIGNATURE_KEYS = frozenset({"merchantOrderId", "amount", "currency", "status"})


@dataclass(frozen=True, slots=True)
class KashierSession:
    id: str
    url: str


# A refund's outcome, from Kashier's many spellings of it (see refund_outcome).
SUCCEEDED = "succeeded"
FAILED = "failed"
PENDING = "pending"
_SUCCEEDED = frozenset({"SUCCESS", "SUCCEEDED", "REFUNDED", "PARTIALLY_REFUNDED", "APPROVED"})
_FAILED = frozenset(
    {"FAILURE", "FAILED", "DECLINED", "REJECTED", "ERROR", "CANCELLED", "CANCELED", "EXPIRED"}
)


def refund_outcome(status: str | None) -> str:
    """succeeded / failed / pending. Anything not known to be final (PENDING, INITIATED,
    an empty or new word) is pending: asked again later, never guessed."""
    word = str(status or "").strip().upper()
    if word in _SUCCEEDED:
        return SUCCEEDED
    if word in _FAILED:
        return FAILED
    return PENDING


@dataclass(frozen=True, slots=True)
class KashierRefund:
    status: str  # Kashier's response.status: SUCCESS, REFUNDED, PENDING, FAILURE...
    transaction_id: str | None
    raw: dict[str, Any]

    @property
    def outcome(self) -> str:
        return refund_outcome(self.status)


@dataclass(frozen=True, slots=True)
class KashierTransaction:
    """One entry of an order's `transactions`."""

    transaction_id: str | None
    operation: str  # upper case: PAY, REFUND...
    status: str
    amount_minor: int | None  # None when Kashier's amount does not parse in the currency
    raw: dict[str, Any]

    @property
    def is_refund(self) -> bool:
        return "REFUND" in self.operation

    @property
    def outcome(self) -> str:
        return refund_outcome(self.status)

    def mentions(self, reference: str) -> bool:
        """Whether `reference` appears in any of its text fields (reason, reference... the
        field name Kashier echoes it under is not documented)."""
        return _mentions(self.raw, reference)


def fep_base_for(api_base: str) -> str:
    """The refund (fep) host beside an api host: test-api.kashier.io -> test-fep.kashier.io,
    so test credentials never reach the live fep host. DEFAULT_FEP_BASE for other hosts."""
    scheme, sep, rest = api_base.rstrip("/").partition("://")
    host, slash, path = rest.partition("/")
    for prefix, fep in (("test-api.", "test-fep."), ("api.", "fep.")):
        if sep and host.startswith(prefix):
            return f"{scheme}://{fep}{host[len(prefix) :]}{slash}{path}"
    return DEFAULT_FEP_BASE


def format_amount(amount: Money) -> str:
    """Minor units -> Kashier's decimal string: EGP 10050 -> "100.50"."""
    exponent = currency_exponent(amount.currency)
    value = Decimal(amount.amount_minor).scaleb(-exponent)
    return f"{value:.{exponent}f}"


def parse_amount(value: Any, currency: str) -> int:
    """Kashier's decimal amount (string or JSON number) -> minor units, exactly, or ValueError."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    try:
        minor = Decimal(str(value)).scaleb(currency_exponent(currency))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if minor != minor.to_integral_value():
        raise ValueError(f"amount {value!r} has more decimals than {currency} allows")
    return int(minor)


def refund_reason(reason: str, reference: str | None) -> str:
    """The `reason` sent with a refund: the same text on every attempt for one refund."""
    text = reason.strip() or "refund"
    return f"{text} [ref {reference}]" if reference else text


def order_transactions(order: dict[str, Any] | None, currency: str) -> list[KashierTransaction]:
    found = []
    for txn in (order or {}).get("transactions") or []:
        if not isinstance(txn, dict):
            continue
        kind = txn.get("operation") or txn.get("method") or txn.get("type") or ""
        ident = txn.get("transactionId") or txn.get("id")
        try:
            amount: int | None = parse_amount(txn.get("amount"), currency)
        except ValueError:
            amount = None
        found.append(
            KashierTransaction(
                transaction_id=str(ident) if ident else None,
                operation=str(kind).upper(),
                status=str(txn.get("status") or "").upper(),
                amount_minor=amount,
                raw=txn,
            )
        )
    return found


def find_refund(
    order: dict[str, Any] | None,
    *,
    currency: str,
    reference: str,
    transaction_id: str | None,
) -> KashierTransaction | None:
    """The one refund transaction that is provably ours: it carries `reference`, or it is
    the `transaction_id` Kashier gave us for it earlier. Never merely one of the same amount."""
    refunds = [t for t in order_transactions(order, currency) if t.is_refund]
    ours = [t for t in refunds if reference and t.mentions(reference)]
    ours = ours or [t for t in refunds if transaction_id and t.transaction_id == transaction_id]
    # Should Kashier list it twice (pending, then final), money that moved wins.
    rank = {SUCCEEDED: 0, PENDING: 1, FAILED: 2}
    return min(ours, key=lambda t: rank[t.outcome], default=None)


def unclaimed_refunds(
    order: dict[str, Any] | None, *, currency: str, amount_minor: int, claimed: set[str]
) -> list[KashierTransaction]:
    """Refund transactions of `amount_minor` that did not fail and whose id is not in
    `claimed`: each could be a refund of ours whose answer was lost, so whoever holds an
    unanswered refund of that amount cannot tell whether it already went through."""
    return [
        txn
        for txn in order_transactions(order, currency)
        if txn.is_refund
        and txn.outcome != FAILED
        and txn.amount_minor in (amount_minor, None)
        and txn.transaction_id not in claimed
    ]


def _mentions(value: Any, reference: str) -> bool:
    if isinstance(value, str):
        return reference in value
    if isinstance(value, dict):
        return any(_mentions(item, reference) for item in value.values())
    if isinstance(value, list):
        return any(_mentions(item, reference) for item in value)
    return False


def _js_string(value: Any) -> str:
    """String(value) as JavaScript renders a JSON scalar (100.0 -> "100")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise InvalidSignature(f"signed field has an unsupported value type {type(value).__name__}")


def _canonical(data: dict[str, Any], keys: list[str], safe: str) -> str:
    """query-string's stringify of the picked keys, keys sorted by code point."""
    parts: list[str] = []
    for key in sorted(keys):
        if key not in data:
            continue
        value = data[key]
        name = quote(key, safe=safe)
        if value is None:
            parts.append(name)
            continue
        for item in value if isinstance(value, list) else [value]:
            parts.append(f"{name}={quote(_js_string(item), safe=safe)}")
    return "&".join(parts)


def signature_payloads(data: dict[str, Any]) -> list[str]:
    keys = data.get("signatureKeys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidSignature("payload has no signatureKeys list")
    missing = REQUIRED_SIGNATURE_KEYS - set(keys)
    if missing:
        raise InvalidSignature(f"signatureKeys omit required fields: {sorted(missing)}")
    absent = [k for k in REQUIRED_SIGNATURE_KEYS if data.get(k) in (None, "")]
    if absent:
        raise InvalidSignature(f"signed fields are empty: {sorted(absent)}")
    strict = _canonical(data, keys, safe="-_.~")  # query-string (RFC 3986)
    legacy = _canonical(data, keys, safe="-_.~!'()*")  # Node's querystring.escape
    return [strict] if strict == legacy else [strict, legacy]


def sign_webhook_data(data: dict[str, Any], api_key: str) -> str:
    """The signature Kashier would send for `data` (tests and tooling)."""
    payload = signature_payloads(data)[0]
    return hmac.new(api_key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_webhook_shape(payload: Any, signature_header: str | None) -> dict[str, Any]:
    """Everything about a webhook that needs no key: the header looks like a signature and
    `data` can be signed. Returns `data`, else raises InvalidSignature, so junk is refused
    before any key is looked up."""
    if not signature_header:
        raise InvalidSignature("x-kashier-signature header is missing")
    received = signature_header.strip().lower()
    if len(received) != hashlib.sha256().digest_size * 2 or not _is_hex(received):
        raise InvalidSignature("x-kashier-signature is not a hex HMAC-SHA256")
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise InvalidSignature("payload has no data object")
    signature_payloads(data)
    return data


def _is_hex(text: str) -> bool:
    return text.isascii() and all(c in "0123456789abcdef" for c in text)


def verify_webhook_signature(
    payload: dict[str, Any], signature_header: str | None, api_key: str
) -> dict[str, Any]:
    """Verify `x-kashier-signature`; return payload["data"] or raise InvalidSignature."""
    data = check_webhook_shape(payload, signature_header)
    if not api_key:
        raise InvalidSignature("no Kashier payment API key is configured")
    received = str(signature_header).strip().lower().encode()
    matched = False
    for candidate in signature_payloads(data):
        expected = hmac.new(api_key.encode(), candidate.encode(), hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected.encode(), received)
    if not matched:
        raise InvalidSignature("Kashier signature does not match")
    return data


class KashierClient:
    def __init__(
        self,
        *,
        merchant_id: str,
        api_key: str,
        secret_key: str,
        http: httpx.AsyncClient,
        api_base: str = DEFAULT_API_BASE,
        fep_base: str | None = None,
    ) -> None:
        self._merchant_id = merchant_id
        self._api_key = api_key
        self._secret_key = secret_key
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._fep_base = (fep_base or fep_base_for(api_base)).rstrip("/")

    async def create_payment_session(
        self,
        *,
        payment_id: UUID,
        amount: Money,
        merchant_redirect: str,
        server_webhook: str,
        expire_at: datetime,
        customer_reference: str,
        customer_email: str | None = None,
        description: str | None = None,
        display: str = "en",
        allowed_methods: str = "card,wallet",
        max_failure_attempts: int = 3,
    ) -> KashierSession:
        """Hosted payment session; our payment id is the order id Kashier echoes back."""
        if expire_at.tzinfo is None:
            raise ValueError("naive datetime: pass an aware expire_at")
        customer: dict[str, str] = {"reference": customer_reference}
        if customer_email:
            customer["email"] = customer_email
        body: dict[str, Any] = {
            "merchantId": self._merchant_id,
            "amount": format_amount(amount),
            "currency": amount.currency,
            "order": str(payment_id),
            "merchantRedirect": merchant_redirect,
            "serverWebhook": server_webhook,
            "expireAt": expire_at.isoformat(),
            "maxFailureAttempts": max_failure_attempts,
            "display": display,
            "type": "one-time",
            "paymentType": "credit",
            "allowedMethods": allowed_methods,
            "customer": customer,
            "metaData": {"payment_id": str(payment_id)},
        }
        if description:
            body["description"] = description[:120]
        data = await self._json("POST", f"{self._api_base}/v3/payment/sessions", json=body)
        session_id, url = data.get("_id") or data.get("sessionId"), data.get("sessionUrl")
        if not session_id or not url:
            raise PermanentProviderError("no _id/sessionUrl in session", provider=PROVIDER)
        return KashierSession(id=str(session_id), url=str(url))

    async def get_session_payment(self, session_id: str) -> dict[str, Any]:
        """The payment behind a session (status, merchantOrderId, amount...)."""
        data = await self._json(
            "GET", f"{self._api_base}/v3/payment/sessions/{quote(session_id, safe='')}/payment"
        )
        inner = data.get("data")
        return inner if isinstance(inner, dict) else data

    async def get_order(self, merchant_order_id: str) -> dict[str, Any] | None:
        """The Kashier order (with its transactions) for our order id, or None."""
        url = f"{self._api_base}/payments/orders/{quote(merchant_order_id, safe='')}"
        data = await self._json("GET", url, ok_statuses=frozenset({404}))
        inner = data.get("response")
        candidates = [inner] if isinstance(inner, dict) else _list(data)
        for order in candidates:
            if str(order.get("merchantOrderId")) == merchant_order_id:
                return order
        return None

    async def create_refund(
        self, *, kashier_order_id: str, amount: Money, reason: str, reference: str | None = None
    ) -> KashierRefund:
        """Refund part or all of an order. NOT idempotent at Kashier: see the module doc.
        `reference` (our refund id) travels in the reason, the same on every attempt."""
        body = {
            "apiOperation": "REFUND",
            "reason": refund_reason(reason, reference),
            "transaction": {"amount": format_amount(amount)},
        }
        url = f"{self._fep_base}/v3/orders/{quote(kashier_order_id, safe='')}/"
        data = await self._json("PUT", url, json=body)
        inner = data.get("response")
        response: dict[str, Any] = inner if isinstance(inner, dict) else {}
        status = str(response.get("status") or data.get("status") or "UNKNOWN").upper()
        txn = response.get("transactionId")
        return KashierRefund(status=status, transaction_id=str(txn) if txn else None, raw=data)

    async def list_transactions(
        self, *, start: datetime, end: datetime, page_size: int = 100, max_pages: int = 1000
    ) -> list[dict[str, Any]]:
        """Orders created in [start, end), following pagination (reconciliation)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("naive datetime: pass aware datetimes")
        result: list[dict[str, Any]] = []
        for page in range(1, max_pages + 1):
            params = {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "page": str(page),
                "limit": str(page_size),
            }
            data = await self._json("GET", f"{self._api_base}/v3/payment/orders", params=params)
            items = _list(data)
            result.extend(items)
            if not _has_more(data, page, len(items), page_size):
                break
        return result

    async def _json(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        headers = {"Authorization": self._secret_key, "api-key": self._api_key}
        request = self._http.build_request(method, url, json=json, params=params, headers=headers)
        response = await send(self._http, PROVIDER, request, ok_statuses=ok_statuses)
        if not response.is_success:
            return {}
        data = response_json(response)
        if not isinstance(data, dict):
            raise PermanentProviderError("response is not a JSON object", provider=PROVIDER)
        return data


def _list(data: dict[str, Any]) -> list[dict[str, Any]]:
    items = data.get("data")
    if isinstance(items, dict):
        items = items.get("data") or items.get("orders")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _has_more(data: dict[str, Any], page: int, count: int, page_size: int) -> bool:
    pagination = data.get("pagination")
    if isinstance(pagination, dict):
        total_pages = pagination.get("totalPages") or pagination.get("pages")
        if isinstance(total_pages, int):
            return page < total_pages
    return count >= page_size
