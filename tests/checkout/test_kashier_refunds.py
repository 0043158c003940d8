"""Kashier refunds through the real outbox relay, Kashier behind respx with its documented
shapes: the refund PUT on the fep host (`response.status`, `response.transactionId`) and the
order read by our merchant order id (`response.transactions[]` with operation, status,
transactionId and a decimal amount). Kashier takes no idempotency key, so what is under test
is that a retry finds THIS refund (by the reference we sent, else the transaction id Kashier
gave it) and that a refund Kashier calls pending is asked about until it is final."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from app.integrations import kashier
from app.integrations.crypto import SecretBox
from app.integrations.kashier import KashierClient
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.relay import Relay, RelayConfig
from app.settings import Settings
from app.worker.deps import JobDeps
from app.worker.jobs import payments as checkout_jobs
from tests.checkout.support import (
    PRICE,
    Client,
    Shop,
    balance,
    book,
    count,
    open_shop,
    relay_due,
    unbalanced_entries,
)
from tests.conftest import KASHIER_API_KEY
from tests.inbox.support import apply_inbox

API = "https://test-api.kashier.test"
FEP = "https://test-fep.kashier.test"
SECRET = "kashier-secret-key"
RELAY = RelayConfig(
    batch_size=20, lease_seconds=10, max_attempts=5, backoff_base=0.01, backoff_cap=0.02
)


@dataclass
class FakeKashier:
    """Kashier's side: the order's transactions, and what each refund PUT does."""

    order_id: str
    merchant_order_id: str
    transactions: list[dict[str, Any]] = field(default_factory=list)
    puts: list[httpx.Request] = field(default_factory=list)
    # One per PUT: a JSON answer, an error status, an exception, or a function of the request.
    answers: list[Any] = field(default_factory=list)

    def order(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "status": "SUCCESS",
                "response": {
                    "merchantOrderId": self.merchant_order_id,
                    "orderId": self.order_id,
                    "status": "CAPTURED",
                    "transactions": [dict(t) for t in self.transactions],
                },
            },
        )

    def refund(self, request: httpx.Request) -> httpx.Response:
        self.puts.append(request)
        answer = self.answers.pop(0)
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer, json={"status": "FAILURE"})
        return httpx.Response(200, json=answer)

    def refunded(self, txn_id: str, amount: str, status: str = "SUCCESS") -> dict[str, Any]:
        """Kashier records a refund transaction (Kashier lists no reference of ours)."""
        txn = {
            "transactionId": txn_id,
            "operation": "refund",
            "status": status,
            "amount": float(amount),
            "currency": "EGP",
            "requestDate": "2026-11-21T10:00:00.000Z",
        }
        self.transactions.append(txn)
        return txn


def refund_answer(txn_id: str, status: str) -> dict[str, Any]:
    return {
        "status": "SUCCESS",
        "response": {"status": status, "transactionId": txn_id, "gatewayCode": "APPROVED"},
        "messages": {"en": "Refund processed"},
    }


@dataclass
class World:
    shop: Shop
    booking_id: str
    payment_id: str
    kashier: FakeKashier
    router: respx.MockRouter
    relay: Relay


@pytest.fixture
async def world(
    client: Client,
    app_engine: AsyncEngine,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> AsyncIterator[World]:
    shop = await open_shop(client)
    created = await book(client, shop, provider="kashier", days_ahead=4)
    payment_id = created["payment"]["id"]
    order_id = f"ks-{payment_id[:8]}"
    await capture_by_webhook(client, payment_id, order_id)
    fake = FakeKashier(order_id=order_id, merchant_order_id=payment_id)
    redis = Redis.from_url(settings.redis_url)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.get(f"{API}/payments/orders/{payment_id}").mock(side_effect=fake.order)
        router.put(f"{FEP}/v3/orders/{order_id}/").mock(side_effect=fake.refund)
        async with httpx.AsyncClient(timeout=5.0) as http:
            client_k = KashierClient(
                merchant_id="MID-1-1",
                api_key=KASHIER_API_KEY,
                secret_key=SECRET,
                http=http,
                api_base=API,
                fep_base=FEP,
            )
            dispatcher = Dispatcher()
            checkout_jobs.register_handlers(dispatcher)
            ctx = HandlerContext(
                sessions=sessions,
                redis=redis,
                namespace=settings.redis_namespace,
                worker_id="test-relay",
                deps=JobDeps(
                    providers=Providers(
                        kashier=client_k, http=http, secret_box=SecretBox(settings.secret_key)
                    )
                ),
            )
            relay = Relay(app_engine, dispatcher, ctx, config=RELAY, seed=1)
            try:
                yield World(shop, created["id"], payment_id, fake, router, relay)
            finally:
                await relay.close()
                await redis.aclose()


async def capture_by_webhook(client: Client, payment_id: str, order_id: str) -> None:
    data = {
        "merchantOrderId": payment_id,
        "orderId": order_id,
        "transactionId": "TX-PAY-1",
        "amount": f"{PRICE / 100:.2f}",
        "currency": "EGP",
        "status": "SUCCESS",
        "method": "card",
        "signatureKeys": ["amount", "currency", "merchantOrderId", "orderId", "status"],
    }
    response = await client.post(
        "/webhooks/kashier",
        content=json.dumps({"event": "pay", "data": data}).encode(),
        headers={
            kashier.SIGNATURE_HEADER: kashier.sign_webhook_data(data, KASHIER_API_KEY),
            "content-type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    await apply_inbox()


async def ask_refund(client: Client, w: World, amount_minor: int) -> str:
    response = await client.post(
        f"/api/v1/bookings/{w.booking_id}/refunds",
        json={"amount_minor": amount_minor, "reason": "customer asked"},
        headers=w.shop.business.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def relay_round(owner: AsyncEngine, w: World) -> None:
    await relay_due(owner, w.relay, "payment.refund")


async def refund_row(owner: AsyncEngine, refund_id: str) -> Any:
    async with owner.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT r.status, r.provider_ref, r.failure_reason, o.status AS outbox, "
                    "o.attempts, o.last_error, o.available_at - now() AS wait "
                    "FROM refunds r JOIN outbox o ON o.topic = 'payment.refund' "
                    "AND o.payload->>'refund_id' = r.id::text WHERE r.id = :id"
                ),
                {"id": refund_id},
            )
        ).one()


async def payment_row(owner: AsyncEngine, payment_id: str) -> Any:
    async with owner.connect() as connection:
        return (
            await connection.execute(
                text("SELECT status, captured_minor, refunded_minor FROM payments WHERE id = :p"),
                {"p": payment_id},
            )
        ).one()


def put_body(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.content)
    return body


async def test_retry_of_a_second_refund_is_not_taken_for_the_first_refund(
    client: Client, owner_engine: AsyncEngine, world: World
) -> None:
    w, k = world, world.kashier
    first = await ask_refund(client, w, 300)
    k.answers.append(refund_answer("TX-300", "REFUNDED"))
    await relay_round(owner_engine, w)
    k.refunded("TX-300", "3.00")
    done = await refund_row(owner_engine, first)
    assert (done.status, done.provider_ref, done.outbox) == ("succeeded", "TX-300", "delivered")

    second = await ask_refund(client, w, 200)
    # The PUT times out and Kashier never made the refund; the next PUT meets a 503.
    k.answers += [httpx.ReadTimeout("no answer"), 503, refund_answer("TX-200", "SUCCESS")]
    for attempt in (1, 2):
        await relay_round(owner_engine, w)
        row = await refund_row(owner_engine, second)
        # Kashier's order shows a successful refund (the 300 one): not ours, not success.
        assert (row.status, row.provider_ref, row.outbox) == ("pending", None, "pending")
        assert row.attempts == attempt
    await relay_round(owner_engine, w)

    row = await refund_row(owner_engine, second)
    assert (row.status, row.provider_ref, row.outbox) == ("succeeded", "TX-200", "delivered")
    bodies = [put_body(r) for r in k.puts]
    assert [b["transaction"]["amount"] for b in bodies] == ["3.00", "2.00", "2.00", "2.00"]
    # Every attempt of one refund sends the same body, our refund id in it as the reference.
    assert k.puts[1].content == k.puts[2].content == k.puts[3].content
    assert bodies[1]["reason"] == f"customer asked [ref {second}]"
    assert bodies[0]["reason"] == f"customer asked [ref {first}]"
    assert all(r.headers["Authorization"] == SECRET for r in k.puts)
    assert (await payment_row(owner_engine, w.payment_id)).refunded_minor == 500
    assert await balance(owner_engine, w.shop.business.tenant_id, "clearing:kashier") == (
        PRICE - 500
    )


async def test_lost_answer_is_recovered_from_our_reference_without_refunding_twice(
    client: Client, owner_engine: AsyncEngine, world: World
) -> None:
    w, k = world, world.kashier
    refund_id = await ask_refund(client, w, 700)

    def made_but_lost(request: httpx.Request) -> Exception:
        # Kashier makes the refund, keeping our reason, and the answer never arrives.
        txn = k.refunded("TX-700", "7.00")
        txn["reason"] = put_body(request)["reason"]
        return httpx.ReadTimeout("answer lost")

    k.answers.append(made_but_lost)
    await relay_round(owner_engine, w)
    assert (await refund_row(owner_engine, refund_id)).status == "pending"
    await relay_round(owner_engine, w)

    row = await refund_row(owner_engine, refund_id)
    assert (row.status, row.provider_ref, row.outbox) == ("succeeded", "TX-700", "delivered")
    assert len(k.puts) == 1


async def test_pending_refund_is_asked_about_until_kashier_says_success(
    client: Client, owner_engine: AsyncEngine, world: World
) -> None:
    w, k = world, world.kashier
    tenant = w.shop.business.tenant_id
    refund_id = await ask_refund(client, w, 1500)
    k.answers.append(refund_answer("TX-P1", "PENDING"))
    await relay_round(owner_engine, w)
    pending = k.refunded("TX-P1", "15.00", status="PENDING")

    row = await refund_row(owner_engine, refund_id)
    assert (row.status, row.provider_ref, row.outbox) == ("pending", "TX-P1", "pending")
    assert "PENDING" in row.last_error
    assert row.wait.total_seconds() > 20  # asked again after a delay, not at once
    await relay_round(owner_engine, w)
    assert (await refund_row(owner_engine, refund_id)).status == "pending"

    pending["status"] = "SUCCESS"
    await relay_round(owner_engine, w)

    row = await refund_row(owner_engine, refund_id)
    assert (row.status, row.provider_ref, row.outbox) == ("succeeded", "TX-P1", "delivered")
    assert len(k.puts) == 1  # asked about, never asked for again
    assert await balance(owner_engine, tenant, "clearing:kashier") == PRICE - 1500
    assert (
        await count(owner_engine, "SELECT count(*) FROM invoices WHERE kind = 'credit_note'") == 1
    )


async def test_pending_refund_that_fails_at_kashier_reverses_its_ledger_entry(
    client: Client, owner_engine: AsyncEngine, world: World
) -> None:
    w, k = world, world.kashier
    tenant = w.shop.business.tenant_id
    refund_id = await ask_refund(client, w, 1500)
    assert await balance(owner_engine, tenant, "clearing:kashier") == PRICE - 1500
    k.answers.append(refund_answer("TX-P2", "PENDING"))
    await relay_round(owner_engine, w)
    k.refunded("TX-P2", "15.00", status="PENDING")["status"] = "FAILURE"
    await relay_round(owner_engine, w)

    row = await refund_row(owner_engine, refund_id)
    assert (row.status, row.provider_ref, row.outbox) == ("failed", "TX-P2", "delivered")
    assert row.failure_reason == "kashier: FAILURE"
    payment = await payment_row(owner_engine, w.payment_id)
    assert (payment.status, payment.captured_minor, payment.refunded_minor) == (
        "succeeded",
        PRICE,
        0,
    )
    assert await balance(owner_engine, tenant, "clearing:kashier") == PRICE
    assert await balance(owner_engine, tenant, "deferred_revenue") == -PRICE
    assert (
        await count(
            owner_engine,
            "SELECT count(*) FROM journal_entries WHERE idempotency_key = :k",
            k=f"refund:{refund_id}:failed",
        )
        == 1
    )
    assert await unbalanced_entries(owner_engine) == 0
    trial = await client.get("/api/v1/ledger/trial-balance", headers=w.shop.business.headers)
    assert trial.status_code == 200, trial.text
    # Clearing holds the whole capture again, owed back as deferred revenue.
    assert trial.json() == [
        {"currency": "EGP", "debits_minor": PRICE, "credits_minor": PRICE, "balanced": True}
    ]
    assert len(k.puts) == 1


async def test_refund_pending_for_ever_ends_dead_and_visible_not_looping(
    client: Client, owner_engine: AsyncEngine, world: World
) -> None:
    w, k = world, world.kashier
    refund_id = await ask_refund(client, w, 400)
    k.answers.append(refund_answer("TX-P3", "PENDING"))
    for _ in range(RELAY.max_attempts + 3):
        await relay_round(owner_engine, w)
        if not k.transactions:
            k.refunded("TX-P3", "4.00", status="PENDING")

    row = await refund_row(owner_engine, refund_id)
    assert (row.status, row.outbox, row.attempts) == ("pending", "dead", RELAY.max_attempts)
    assert "TX-P3" in row.last_error and "PENDING" in row.last_error
    dead = await client.get("/api/v1/outbox?status=dead", headers=w.shop.business.headers)
    assert dead.status_code == 200, dead.text
    assert "TX-P3" in dead.text
    assert len(k.puts) == 1
    assert (await payment_row(owner_engine, w.payment_id)).refunded_minor == 400


async def test_unowned_refund_of_the_same_amount_stops_the_retry_for_on_call(
    client: Client, owner_engine: AsyncEngine, world: World
) -> None:
    w, k = world, world.kashier
    refund_id = await ask_refund(client, w, 250)
    # A refund of the same amount that nothing of ours owns (made in Kashier's dashboard,
    # or ours with the answer lost and no reference echoed): it cannot be told apart.
    k.refunded("TX-DASH", "2.50")
    await relay_round(owner_engine, w)

    row = await refund_row(owner_engine, refund_id)
    assert (row.status, row.outbox) == ("pending", "dead")
    assert "TX-DASH" in row.last_error
    assert k.puts == []

    # On-call finds it is this refund's money: records it on the refund and retries the row.
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE refunds SET provider_ref = 'TX-DASH' WHERE id = :r"), {"r": refund_id}
        )
        outbox_id = await connection.scalar(
            text("SELECT id FROM outbox WHERE payload->>'refund_id' = :r"), {"r": refund_id}
        )
    retried = await client.post(
        f"/api/v1/outbox/{outbox_id}/retry", headers=w.shop.business.headers
    )
    assert retried.status_code == 200, retried.text
    await relay_round(owner_engine, w)

    row = await refund_row(owner_engine, refund_id)
    assert (row.status, row.provider_ref, row.outbox) == ("succeeded", "TX-DASH", "delivered")
    assert k.puts == []
