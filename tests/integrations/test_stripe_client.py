from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, parse_qsl
from uuid import uuid4

import httpx
import pytest
import respx

from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.integrations.stripe_client import StripeGateway
from app.money import Money
from tests.integrations.conftest import stripe_fixture

API = "https://stripe.test"


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


@pytest.fixture
def gateway(http: httpx.AsyncClient) -> StripeGateway:
    return StripeGateway("sk_test_123", http, api_base=API)


@pytest.fixture
def stripe_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=True) as router:
        yield router


async def test_create_checkout_session_sends_ids_amount_and_idempotency_key(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    payment_id, booking_id, tenant_id = uuid4(), uuid4(), uuid4()
    session = stripe_fixture("checkout.session", id="cs_test_1", url="https://pay.test/cs_1")
    session["payment_intent"] = "pi_123"
    route = stripe_api.post("/v1/checkout/sessions").respond(200, json=session)

    result = await gateway.create_checkout_session(
        payment_id=payment_id,
        booking_id=booking_id,
        tenant_id=tenant_id,
        amount=Money(15050, "EGP"),
        description="Haircut 30 min",
        success_url="https://reckon.test/ok",
        cancel_url="https://reckon.test/cancel",
        customer_email="a@example.com",
    )

    assert (result.id, result.url, result.payment_intent_id) == (
        "cs_test_1",
        "https://pay.test/cs_1",
        "pi_123",
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.headers["Idempotency-Key"] == f"checkout-{payment_id}"
    assert request.headers["Authorization"] == "Bearer sk_test_123"
    body = form(request)
    assert body["mode"] == "payment"
    assert body["client_reference_id"] == str(payment_id)
    assert body["customer_email"] == "a@example.com"
    assert body["line_items[0][price_data][currency]"] == "egp"
    assert body["line_items[0][price_data][unit_amount]"] == "15050"
    assert body["line_items[0][quantity]"] == "1"
    for prefix in ("metadata", "payment_intent_data[metadata]"):
        assert body[f"{prefix}[tenant_id]"] == str(tenant_id)
        assert body[f"{prefix}[booking_id]"] == str(booking_id)
        assert body[f"{prefix}[payment_id]"] == str(payment_id)


async def test_retrieve_payment_intent_expands_balance_transaction_for_fee(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    txn = stripe_fixture("balance_transaction", id="txn_1", amount=15050, fee=467, net=14583)
    charge = stripe_fixture("charge", id="ch_1", balance_transaction=txn)
    intent = stripe_fixture(
        "payment_intent",
        id="pi_1",
        amount=15050,
        amount_received=15050,
        currency="egp",
        status="succeeded",
        latest_charge=charge,
        metadata={"payment_id": "p1"},
    )
    route = stripe_api.get("/v1/payment_intents/pi_1").respond(200, json=intent)

    details = await gateway.retrieve_payment_intent("pi_1")

    assert parse_qs(route.calls.last.request.url.query.decode())["expand[0]"] == [
        "latest_charge.balance_transaction"
    ]
    assert details.amount == Money(15050, "EGP")
    assert details.status == "succeeded"
    assert (details.charge_id, details.balance_transaction_id) == ("ch_1", "txn_1")
    assert (details.fee_minor, details.net_minor, details.settlement_currency) == (
        467,
        14583,
        "USD",
    )
    assert details.metadata == {"payment_id": "p1"}


async def test_create_refund_uses_refund_id_as_idempotency_key(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    refund_id = uuid4()
    body = stripe_fixture("refund", id="re_1", amount=500, payment_intent="pi_1", status="pending")
    route = stripe_api.post("/v1/refunds").respond(200, json=body)

    refund = await gateway.create_refund(
        payment_intent_id="pi_1",
        amount_minor=500,
        refund_id=refund_id,
        reason="requested_by_customer",
    )

    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == f"refund-{refund_id}"
    assert form(request) == {
        "payment_intent": "pi_1",
        "amount": "500",
        "metadata[refund_id]": str(refund_id),
        "reason": "requested_by_customer",
    }
    assert (refund.id, refund.status, refund.amount) == ("re_1", "pending", Money(500, "USD"))


async def test_retrieve_balance_transaction(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    body = stripe_fixture("balance_transaction", id="txn_9", fee=30, net=70)
    stripe_api.get("/v1/balance_transactions/txn_9").respond(200, json=body)

    txn = await gateway.retrieve_balance_transaction("txn_9")

    assert (txn.id, txn.amount_minor, txn.fee_minor, txn.net_minor) == ("txn_9", 100, 30, 70)
    assert (txn.currency, txn.type, txn.source) == ("USD", "charge", "ch_1PgafuB7WZ01zgkWXYmPNZs8")


async def test_list_balance_transactions_follows_every_page(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    first = [stripe_fixture("balance_transaction", id=f"txn_{i}") for i in (1, 2)]
    second = [stripe_fixture("balance_transaction", id="txn_3")]

    def page(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        assert query["created[gte]"] == ["1767225600"]
        assert query["created[lt]"] == ["1767312000"]
        if "starting_after" not in query:
            data, more = first, True
        else:
            assert query["starting_after"] == ["txn_2"]
            data, more = second, False
        url = "/v1/balance_transactions"
        return httpx.Response(
            200, json={"object": "list", "data": data, "has_more": more, "url": url}
        )

    route = stripe_api.get("/v1/balance_transactions").mock(side_effect=page)

    txns = await gateway.list_balance_transactions(
        created_gte=datetime(2026, 1, 1, tzinfo=UTC), created_lt=datetime(2026, 1, 2, tzinfo=UTC)
    )

    assert [t.id for t in txns] == ["txn_1", "txn_2", "txn_3"]
    assert route.call_count == 2


async def test_create_transfer_uses_payout_id_as_idempotency_key(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    payout_id = uuid4()
    body = stripe_fixture("transfer", id="tr_1", amount=2500, currency="egp", destination="acct_9")
    route = stripe_api.post("/v1/transfers").respond(200, json=body)

    transfer = await gateway.create_transfer(
        payout_id=payout_id, amount=Money(2500, "EGP"), destination="acct_9"
    )

    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == f"payout-{payout_id}"
    sent = form(request)
    assert (sent["amount"], sent["currency"], sent["destination"]) == ("2500", "egp", "acct_9")
    assert sent["metadata[payout_id]"] == str(payout_id)
    assert (transfer.id, transfer.amount, transfer.destination) == (
        "tr_1",
        Money(2500, "EGP"),
        "acct_9",
    )


def stripe_error(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"error": {"type": "invalid_request_error", "code": code, "message": f"boom {code}"}}
    return httpx.Response(status, json=body, headers=headers)


async def test_rate_limit_is_retryable_with_retry_after(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    stripe_api.get("/v1/balance_transactions/txn_1").mock(
        return_value=stripe_error(429, "rate_limit", **{"Retry-After": "7"})
    )
    with pytest.raises(RetryableProviderError) as info:
        await gateway.retrieve_balance_transaction("txn_1")
    assert (info.value.status, info.value.retry_after) == (429, 7.0)


async def test_server_error_and_timeout_are_retryable(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    route = stripe_api.post("/v1/refunds")
    route.mock(return_value=stripe_error(500, "api_error"))
    with pytest.raises(RetryableProviderError) as info:
        await gateway.create_refund(payment_intent_id="pi_1", amount_minor=1, refund_id=uuid4())
    assert info.value.status == 500

    route.mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(RetryableProviderError) as info:
        await gateway.create_refund(payment_intent_id="pi_1", amount_minor=1, refund_id=uuid4())
    assert info.value.status is None


async def test_bad_request_is_permanent_and_should_retry_header_wins(
    gateway: StripeGateway, stripe_api: respx.MockRouter
) -> None:
    route = stripe_api.post("/v1/refunds")
    route.mock(return_value=stripe_error(400, "charge_already_refunded"))
    with pytest.raises(PermanentProviderError) as info:
        await gateway.create_refund(payment_intent_id="pi_1", amount_minor=1, refund_id=uuid4())
    assert (info.value.status, info.value.code) == (400, "charge_already_refunded")

    route.mock(return_value=stripe_error(409, "lock_timeout", **{"Stripe-Should-Retry": "true"}))
    with pytest.raises(RetryableProviderError):
        await gateway.create_refund(payment_intent_id="pi_1", amount_minor=1, refund_id=uuid4())
