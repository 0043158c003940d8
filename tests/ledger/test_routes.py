"""Ledger and revenue endpoints: owners and admins read, staff are refused."""

from __future__ import annotations

import csv
import io

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import add_user, sign_up
from tests.ledger.scenario import post_month

Client = AsyncTestClient[Litestar]

PATHS = [
    "/api/v1/ledger/accounts",
    "/api/v1/ledger/entries?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z",
    "/api/v1/ledger/trial-balance",
    "/api/v1/ledger/balances?at=2026-03-10T12:00:00%2B02:00",
    "/api/v1/reports/revenue?from=2026-03-01&to=2026-03-31&group_by=day",
    "/api/v1/reports/revenue?from=2026-03-01&to=2026-03-31&group_by=branch&format=csv",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
async def test_ledger_routes_are_for_managers_only(client: Client, role: str, path: str) -> None:
    business = await sign_up(client)
    token = business.token if role == "owner" else await add_user(client, business, role)
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    if role == "staff":
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "forbidden"
    else:
        assert response.status_code == 200, response.text


async def test_accounts_trial_balance_and_balances_at(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    business = await sign_up(client, timezone="Africa/Cairo")
    await post_month(sessions, business.tenant_id)
    listed = (await client.get("/api/v1/ledger/accounts", headers=business.headers)).json()
    by_code = {(a["code"], a["currency"]): a for a in listed}
    assert by_code[("expense:fees:stripe", "EGP")] == {
        "code": "expense:fees:stripe",
        "name": "expense:fees:stripe",
        "type": "expense",
        "currency": "EGP",
        "balance_minor": 320,
    }
    assert by_code[("payable:staff:r1", "EGP")]["balance_minor"] == -1_500

    trial = (await client.get("/api/v1/ledger/trial-balance", headers=business.headers)).json()
    assert {t["currency"] for t in trial} == {"EGP", "USD"}
    assert all(t["debits_minor"] == t["credits_minor"] > 0 and t["balanced"] for t in trial)

    # Before the refunds of the 11th (local), clearing held the capture less its fee.
    early = (
        await client.get(
            "/api/v1/ledger/balances",
            params={"at": "2026-03-10T12:00:00+02:00"},
            headers=business.headers,
        )
    ).json()
    early_by_code = {(a["code"], a["currency"]): a["balance_minor"] for a in early}
    assert early_by_code[("clearing:stripe", "EGP")] == 9_680
    final = {(a["code"], a["currency"]): a["balance_minor"] for a in listed}
    assert final[("clearing:stripe", "EGP")] == 9_680 - 2_500 - 3_000


async def test_entries_are_listed_with_postings_in_range(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    business = await sign_up(client)
    await post_month(sessions, business.tenant_id)
    response = await client.get(
        "/api/v1/ledger/entries",
        headers=business.headers,
        params={"from": "2026-03-10T00:00:00Z", "to": "2026-03-10T12:00:00Z"},
    )
    entries = response.json()
    assert [e["reason"] for e in entries] == ["checkout", "capture", "completion", "completion"]
    capture = entries[1]
    assert sorted((p["account_code"], p["amount_minor"]) for p in capture["postings"]) == [
        ("clearing:stripe", -320),
        ("clearing:stripe", 10_000),
        ("expense:fees:stripe", 320),
        ("receivable:customer", -10_000),
    ]
    naive = await client.get(
        "/api/v1/ledger/entries",
        headers=business.headers,
        params={"from": "2026-03-10T00:00:00", "to": "2026-03-11T00:00:00Z"},
    )
    assert naive.status_code == 422


async def test_revenue_report_json_and_csv(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    business = await sign_up(client, timezone="Africa/Cairo")
    await post_month(sessions, business.tenant_id)
    params = {"from": "2026-03-09", "to": "2026-03-11", "group_by": "day"}
    body = (
        await client.get("/api/v1/reports/revenue", params=params, headers=business.headers)
    ).json()
    assert body["from"] == "2026-03-09" and body["timezone"] == "Africa/Cairo"
    egp_total = next(t for t in body["totals"] if t["currency"] == "EGP")
    assert egp_total["net_minor"] == 4_180
    response = await client.get(
        "/api/v1/reports/revenue", params={**params, "format": "csv"}, headers=business.headers
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["period"], r["currency"], r["net"]) for r in rows] == [
        ("2026-03-10", "EGP", "96.80"),
        ("2026-03-10", "USD", "7.00"),
        ("2026-03-11", "EGP", "-55.00"),
    ]
    bad = await client.get(
        "/api/v1/reports/revenue", headers=business.headers, params={**params, "group_by": "year"}
    )
    assert bad.status_code == 422 and bad.json()["type"] == "validation_error"
