"""Kashier runs, provider failures, the summary, role guards and input validation."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from tests.factories import Business, add_user
from tests.reconciliation.conftest import FakeKashier, FakeStripe
from tests.reconciliation.test_runs import findings, run
from tests.reconciliation.world import World, add_payment, add_refund

Client = AsyncTestClient[Litestar]


def kashier_order(
    payment_id: uuid.UUID,
    amount: str,
    *,
    refunds: tuple[tuple[str, str], ...] = (),
    currency: str = "EGP",
) -> dict[str, object]:
    return {
        "_id": f"ko_{payment_id.hex[:8]}",
        "merchantOrderId": str(payment_id),
        "amount": amount,
        "currency": currency,
        "status": "SUCCESS",
        "transactions": [
            {"transactionId": "pay-1", "operation": "pay", "amount": amount, "status": "SUCCESS"},
            *(
                {"transactionId": ref, "operation": "refund", "amount": value, "status": "SUCCESS"}
                for ref, value in refunds
            ),
        ],
    }


async def test_kashier_orders_and_refunds_match_and_a_short_capture_is_reported(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_kashier: FakeKashier,
) -> None:
    paid = await add_payment(owner_engine, sessions, world, provider="kashier", amount=15_050)
    await add_refund(
        owner_engine, sessions, world, paid, provider="kashier", amount=5_000, refund_ref="kr-1"
    )
    short = await add_payment(owner_engine, sessions, world, provider="kashier", amount=20_000)
    fake_kashier.orders = [
        kashier_order(paid, "150.50", refunds=(("kr-1", "50.00"),)),
        kashier_order(short, "199.99"),
    ]

    body = await run(client, business, provider="kashier")

    assert (body["provider_records"], body["matched"], body["discrepancies"]) == (3, 2, 1)
    assert await findings(client, business) == {("amount_mismatch", str(short))}


async def test_provider_outage_answers_503_and_records_a_failed_run(
    client: Client,
    business: Business,
    world: World,
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    fake_stripe.fail_with = 500

    response = await client.post(
        "/api/v1/reconciliation/runs",
        headers=business.headers,
        json={"provider": "stripe", "date": "2026-03-10"},
    )

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    runs = (await client.get("/api/v1/reconciliation/runs", headers=business.headers)).json()
    assert [(r["status"], r["date"]) for r in runs] == [("failed", "2026-03-10")]
    assert "stripe" in runs[0]["error"]


async def test_summary_tells_reconciled_days_from_days_with_open_findings(
    client: Client,
    business: Business,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    fake_stripe: FakeStripe,
) -> None:
    await add_payment(
        owner_engine, sessions, world, provider="stripe", amount=1_000, charge_ref="ch_1"
    )
    fake_stripe.add("txn_1", type="charge", source="ch_1", amount=1_000)
    await run(client, business)
    fake_stripe.add("txn_2", type="charge", source="ch_2", amount=3_000, owner=world.tenant_id)
    response = await client.post(
        "/api/v1/reconciliation/runs",
        headers=business.headers,
        json={"provider": "stripe", "date": "2026-03-11"},
    )
    assert response.status_code == 201

    summary = await client.get(
        "/api/v1/reconciliation/summary?from=2026-03-10&to=2026-03-11", headers=business.headers
    )

    assert summary.status_code == 200
    (stripe,) = summary.json()
    assert (stripe["days_run"], stripe["days_reconciled"], stripe["open_discrepancies"]) == (
        2,
        1,
        1,
    )
    assert stripe["reconciled"] is False


async def test_reconciliation_is_for_owners_and_admins_only(
    client: Client,
    business: Business,
    providers: Providers,
) -> None:
    staff = {"Authorization": f"Bearer {await add_user(client, business, 'staff')}"}
    admin = {"Authorization": f"Bearer {await add_user(client, business, 'admin')}"}
    body = {"provider": "stripe", "date": "2026-03-10"}

    for method, path in [
        ("get", "/api/v1/reconciliation/runs"),
        ("get", "/api/v1/reconciliation/discrepancies"),
        ("post", "/api/v1/reconciliation/runs"),
    ]:
        kwargs: dict[str, Any] = {"json": body} if method == "post" else {}
        denied = await getattr(client, method)(path, headers=staff, **kwargs)
        assert denied.status_code == 403, path
        assert denied.json()["type"] == "forbidden"
    assert (await client.get("/api/v1/reconciliation/runs", headers=admin)).status_code == 200
    assert (await client.get("/api/v1/reconciliation/runs")).status_code == 401


async def test_bad_reconciliation_input_is_a_422_problem(
    client: Client,
    business: Business,
    providers: Providers,
) -> None:
    for body in [
        {"provider": "paypal", "date": "2026-03-10"},
        {"provider": "stripe", "date": "10/03/2026"},
        {"provider": "stripe"},
        {"provider": "stripe", "date": "2026-03-10", "extra": 1},
        {"provider": "stripe", "date": "2026-03-10", "tolerances": {"amount_minor": -1}},
    ]:
        response = await client.post(
            "/api/v1/reconciliation/runs", headers=business.headers, json=body
        )
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "validation_error"
    missing = await client.post(
        f"/api/v1/reconciliation/discrepancies/{uuid.uuid4()}/resolve",
        headers=business.headers,
        json={"note": "x"},
    )
    assert missing.status_code == 404
    empty = await client.post(
        f"/api/v1/reconciliation/discrepancies/{uuid.uuid4()}/resolve",
        headers=business.headers,
        json={"note": ""},
    )
    assert empty.status_code == 422
    status = await client.get(
        "/api/v1/reconciliation/discrepancies?status=bogus", headers=business.headers
    )
    assert status.status_code == 422
