from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
import respx

from app.integrations.errors import (
    InvalidSignature,
    PermanentProviderError,
    RetryableProviderError,
)
from app.integrations.kashier import (
    KashierClient,
    format_amount,
    parse_amount,
    verify_webhook_signature,
)
from app.money import Money

API = "https://test-api.kashier.test"
FEP = "https://test-fep.kashier.test"
API_KEY = "d02f9fd0-payment-api-key"
SECRET_KEY = "secret$key"


@pytest.fixture
def kashier(http: httpx.AsyncClient) -> KashierClient:
    return KashierClient(
        merchant_id="MID-1-2",
        api_key=API_KEY,
        secret_key=SECRET_KEY,
        http=http,
        api_base=API,
        fep_base=FEP,
    )


@pytest.fixture
def kashier_api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


def assert_auth_headers(request: httpx.Request) -> None:
    assert request.headers["Authorization"] == SECRET_KEY
    assert request.headers["api-key"] == API_KEY


async def test_create_payment_session_posts_decimal_amount_and_our_order_id(
    kashier: KashierClient, kashier_api: respx.MockRouter
) -> None:
    payment_id = uuid4()
    route = kashier_api.post(f"{API}/v3/payment/sessions").respond(
        201,
        json={"_id": "sess_1", "sessionUrl": "https://payments.kashier.io/session/sess_1"},
    )

    session = await kashier.create_payment_session(
        payment_id=payment_id,
        amount=Money(15050, "EGP"),
        merchant_redirect="https://reckon.test/return",
        server_webhook="https://reckon.test/webhooks/kashier",
        expire_at=datetime(2026, 11, 21, 18, 0, tzinfo=UTC),
        customer_reference="cust-1",
        customer_email="a@example.com",
        display="ar",
    )

    assert (session.id, session.url) == ("sess_1", "https://payments.kashier.io/session/sess_1")
    request = route.calls.last.request
    assert request.method == "POST"
    assert_auth_headers(request)
    body = json.loads(request.content)
    assert body["merchantId"] == "MID-1-2"
    assert body["amount"] == "150.50"
    assert body["currency"] == "EGP"
    assert body["order"] == str(payment_id)
    assert body["merchantRedirect"] == "https://reckon.test/return"
    assert body["serverWebhook"] == "https://reckon.test/webhooks/kashier"
    assert body["expireAt"] == "2026-11-21T18:00:00+00:00"
    assert body["display"] == "ar"
    assert body["customer"] == {"reference": "cust-1", "email": "a@example.com"}


async def test_session_response_without_url_is_permanent(
    kashier: KashierClient, kashier_api: respx.MockRouter
) -> None:
    kashier_api.post(f"{API}/v3/payment/sessions").respond(200, json={"status": "SUCCESS"})
    with pytest.raises(PermanentProviderError):
        await kashier.create_payment_session(
            payment_id=uuid4(),
            amount=Money(100, "EGP"),
            merchant_redirect="https://r",
            server_webhook="https://w",
            expire_at=datetime(2026, 1, 1, tzinfo=UTC),
            customer_reference="c",
        )


async def test_create_refund_puts_refund_operation_on_fep_host(
    kashier: KashierClient, kashier_api: respx.MockRouter
) -> None:
    route = kashier_api.put(f"{FEP}/v3/orders/kord_1/").respond(
        200, json={"status": "SUCCESS", "response": {"status": "SUCCESS", "transactionId": "TX9"}}
    )

    refund = await kashier.create_refund(
        kashier_order_id="kord_1", amount=Money(2500, "EGP"), reason="customer cancelled"
    )

    request = route.calls.last.request
    assert request.method == "PUT"
    assert_auth_headers(request)
    assert json.loads(request.content) == {
        "apiOperation": "REFUND",
        "reason": "customer cancelled",
        "transaction": {"amount": "25.00"},
    }
    assert (refund.status, refund.transaction_id) == ("SUCCESS", "TX9")


async def test_get_order_reads_the_order_by_our_order_id(
    kashier: KashierClient, kashier_api: respx.MockRouter
) -> None:
    # Kashier's "Retrieve Order Details" (developers.kashier.io, Order Reconciliation).
    route = kashier_api.get(f"{API}/payments/orders/pay-1").respond(
        200,
        json={
            "status": "SUCCESS",
            "response": {
                "merchantOrderId": "pay-1",
                "status": "REFUNDED",
                "totalRefundedAmount": 150.5,
                "transactions": [],
            },
        },
    )

    order = await kashier.get_order("pay-1")

    assert order is not None and order["status"] == "REFUNDED"
    assert_auth_headers(route.calls.last.request)


async def test_get_session_payment_unwraps_data(
    kashier: KashierClient, kashier_api: respx.MockRouter
) -> None:
    kashier_api.get(f"{API}/v3/payment/sessions/sess_1/payment").respond(
        200, json={"data": {"status": "SUCCESS", "merchantOrderId": "pay-1"}}
    )
    payment = await kashier.get_session_payment("sess_1")
    assert payment == {"status": "SUCCESS", "merchantOrderId": "pay-1"}


async def test_list_transactions_walks_pages_in_the_window(
    kashier: KashierClient, kashier_api: respx.MockRouter
) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params["from"] == "2026-01-01T00:00:00+00:00"
        assert params["to"] == "2026-01-02T00:00:00+00:00"
        number = int(params["page"])
        data = [{"merchantOrderId": f"o{number}-{i}"} for i in range(2)]
        return httpx.Response(200, json={"data": data, "pagination": {"totalPages": 2}})

    route = kashier_api.get(f"{API}/v3/payment/orders").mock(side_effect=page)

    orders = await kashier.list_transactions(
        start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC)
    )

    assert [o["merchantOrderId"] for o in orders] == ["o1-0", "o1-1", "o2-0", "o2-1"]
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(503), RetryableProviderError),
        (httpx.Response(429, headers={"Retry-After": "12"}), RetryableProviderError),
        (httpx.Response(400, json={"message": "invalid amount"}), PermanentProviderError),
        (httpx.Response(401, json={"message": "bad key"}), PermanentProviderError),
    ],
)
async def test_kashier_errors_are_classified(
    kashier: KashierClient,
    kashier_api: respx.MockRouter,
    response: httpx.Response,
    expected: type[Exception],
) -> None:
    kashier_api.put(f"{FEP}/v3/orders/k1/").mock(return_value=response)
    with pytest.raises(expected):
        await kashier.create_refund(kashier_order_id="k1", amount=Money(1, "EGP"), reason="r")


async def test_kashier_timeout_is_retryable(
    kashier: KashierClient, kashier_api: respx.MockRouter
) -> None:
    kashier_api.put(f"{FEP}/v3/orders/k1/").mock(side_effect=httpx.ConnectTimeout("down"))
    with pytest.raises(RetryableProviderError):
        await kashier.create_refund(kashier_order_id="k1", amount=Money(1, "EGP"), reason="r")


# --- webhook signature -------------------------------------------------------------------


def webhook_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "merchantOrderId": "9f1c-pay-1",
        "kashierOrderId": "kord_1",
        "orderReference": "TEST-ORD-1",
        "transactionId": "TX-1",
        "status": "SUCCESS",
        "method": "card",
        "amount": "150.50",
        "currency": "EGP",
        "cardBrand": "Visa",
        "transactionResponseCode": "00",
        "signatureKeys": [
            "merchantOrderId",
            "transactionId",
            "kashierOrderId",
            "orderReference",
            "status",
            "method",
            "amount",
            "currency",
            "transactionResponseCode",
        ],
    }
    data.update(overrides)
    return data


def kashier_signature(data: dict[str, Any], key: str = API_KEY) -> str:
    # Independent of the module: Kashier's reference sorts the keys, builds a query string
    # (values percent-encoded) and signs it with the payment API key.
    keys = sorted(data["signatureKeys"])
    query = "&".join(f"{k}={quote(str(data[k]), safe='-_.~')}" for k in keys)
    return hmac.new(key.encode(), query.encode(), hashlib.sha256).hexdigest()


def test_kashier_valid_signature_returns_data() -> None:
    data = webhook_data()
    payload = {"event": "pay", "data": data}
    assert verify_webhook_signature(payload, kashier_signature(data), API_KEY) is data


def test_kashier_signature_is_case_insensitive_hex_and_encodes_values() -> None:
    data = webhook_data(orderReference="ORD 1/ä&x=y")
    signature = kashier_signature(data).upper()
    assert verify_webhook_signature({"data": data}, signature, API_KEY) is data


def test_kashier_json_number_amount_signs_like_javascript() -> None:
    data = webhook_data(amount=150.0)
    signature = kashier_signature(webhook_data(amount="150"))
    assert verify_webhook_signature({"data": data}, signature, API_KEY)


@pytest.mark.parametrize(
    "tamper", [{"amount": "1.00"}, {"status": "FAILURE"}, {"merchantOrderId": "other"}]
)
def test_kashier_tampered_signed_field_is_rejected(tamper: dict[str, str]) -> None:
    signature = kashier_signature(webhook_data())
    with pytest.raises(InvalidSignature):
        verify_webhook_signature({"data": webhook_data(**tamper)}, signature, API_KEY)


def test_kashier_wrong_key_is_rejected() -> None:
    data = webhook_data()
    with pytest.raises(InvalidSignature):
        verify_webhook_signature({"data": data}, kashier_signature(data, "other"), API_KEY)


@pytest.mark.parametrize("missing", ["merchantOrderId", "amount", "currency", "status"])
def test_kashier_signature_keys_must_cover_order_amount_currency_status(missing: str) -> None:
    data = webhook_data()
    data["signatureKeys"] = [k for k in data["signatureKeys"] if k != missing]
    # Correctly signed over the reduced key set, and still refused: it proves too little.
    with pytest.raises(InvalidSignature, match="required"):
        verify_webhook_signature({"data": data}, kashier_signature(data), API_KEY)


def test_kashier_missing_header_or_signature_keys_is_rejected() -> None:
    data = webhook_data()
    with pytest.raises(InvalidSignature):
        verify_webhook_signature({"data": data}, None, API_KEY)
    without_keys = {k: v for k, v in data.items() if k != "signatureKeys"}
    with pytest.raises(InvalidSignature):
        verify_webhook_signature({"data": without_keys}, kashier_signature(data), API_KEY)
    with pytest.raises(InvalidSignature):
        verify_webhook_signature({"event": "pay"}, kashier_signature(data), API_KEY)


def test_amount_format_and_parse_are_exact() -> None:
    assert format_amount(Money(15050, "EGP")) == "150.50"
    assert format_amount(Money(5, "EGP")) == "0.05"
    assert format_amount(Money(1234, "KWD")) == "1.234"
    assert parse_amount("150.50", "EGP") == 15050
    assert parse_amount(150.5, "EGP") == 15050
    assert parse_amount(150, "EGP") == 15000
    with pytest.raises(ValueError):
        parse_amount("150.505", "EGP")
    with pytest.raises(ValueError):
        parse_amount("abc", "EGP")
