"""Revenue report served by app.reports: the ledger's figures, unchanged, plus whether the
providers' days in the range are reconciled."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.edge.api import ledger as ledger_routes
from tests.factories import add_user, sign_up
from tests.ledger.scenario import post_month
from tests.reports.support import Client

PATH = "/api/v1/reports/revenue"
PARAMS = {"from": "2026-03-09", "to": "2026-03-11", "group_by": "day"}


async def add_run(
    owner_engine: AsyncEngine,
    tenant_id: uuid.UUID,
    provider: str,
    run_date: date,
    *,
    status: str = "completed",
    matched: int = 4,
    discrepancy: str | None = None,
) -> None:
    run_id = uuid.uuid4()
    window_start = datetime.combine(run_date, datetime.min.time(), UTC)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO reconciliation_runs (tenant_id, id, provider, run_date, status, "
                "window_start, window_end, matched, started_at, finished_at) VALUES "
                "(:t, :id, :p, :d, :status, :ws, :we, :matched, :ws, :we)"
            ),
            {
                "t": tenant_id,
                "id": run_id,
                "p": provider,
                "d": run_date,
                "status": status,
                "ws": window_start,
                "we": window_start + timedelta(days=1),
                "matched": matched,
            },
        )
        if discrepancy:
            await connection.execute(
                text(
                    "INSERT INTO reconciliation_discrepancies (tenant_id, id, run_id, provider, "
                    "kind, provider_ref, status, resolution_note, resolved_at) VALUES (:t, :id, "
                    ":run, :p, 'amount_mismatch', :ref, :status, :note, :at)"
                ),
                {
                    "t": tenant_id,
                    "id": uuid.uuid4(),
                    "run": run_id,
                    "p": provider,
                    "ref": f"txn_{uuid.uuid4().hex[:8]}",
                    "status": discrepancy,
                    "note": "refunded twice" if discrepancy == "resolved" else None,
                    "at": window_start if discrepancy == "resolved" else None,
                },
            )


async def test_revenue_keeps_its_figures_and_adds_reconciliation_per_provider(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    business = await sign_up(client, timezone="Africa/Cairo")
    await post_month(sessions, business.tenant_id)
    tenant = business.tenant_id
    for day in (9, 10, 11):
        await add_run(owner_engine, tenant, "stripe", date(2026, 3, day))
    await add_run(owner_engine, tenant, "kashier", date(2026, 3, 9), discrepancy="open")
    await add_run(owner_engine, tenant, "kashier", date(2026, 3, 10), status="failed", matched=0)
    await add_run(owner_engine, tenant, "kashier", date(2026, 3, 11), discrepancy="resolved")
    # Outside the range: ignored.
    await add_run(owner_engine, tenant, "stripe", date(2026, 3, 12), discrepancy="open")

    response = await client.get(PATH, params=PARAMS, headers=business.headers)
    body = response.json()

    assert set(body) == {"from", "to", "timezone", "group_by", "rows", "totals", "reconciliation"}
    assert body["from"] == "2026-03-09" and body["timezone"] == "Africa/Cairo"
    assert body["group_by"] == ["day"]
    egp = next(t for t in body["totals"] if t["currency"] == "EGP")
    assert egp["net_minor"] == 4_180
    assert body["reconciliation"] == [
        {
            "provider": "kashier",
            "reconciled": False,
            "days": 3,
            "days_run": 3,
            "days_reconciled": 1,
            "days_failed": 1,
            "matched": 8,
            "open_discrepancies": 1,
            "resolved_discrepancies": 1,
        },
        {
            "provider": "stripe",
            "reconciled": True,
            "days": 3,
            "days_run": 3,
            "days_reconciled": 3,
            "days_failed": 0,
            "matched": 12,
            "open_discrepancies": 0,
            "resolved_discrepancies": 0,
        },
    ]


async def test_revenue_csv_is_unchanged_and_without_reconciliation(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    business = await sign_up(client, timezone="Africa/Cairo")
    await post_month(sessions, business.tenant_id)
    await add_run(owner_engine, business.tenant_id, "stripe", date(2026, 3, 9))
    response = await client.get(PATH, params={**PARAMS, "format": "csv"}, headers=business.headers)
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="revenue-2026-03-09-2026-03-11.csv"' in response.headers["content-disposition"]
    lines = response.text.split("\r\n")
    assert lines[0] == "period,dimension,currency,gross,refunds,fees,commissions,net"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["period"], r["currency"], r["net"]) for r in rows] == [
        ("2026-03-10", "EGP", "96.80"),
        ("2026-03-10", "USD", "7.00"),
        ("2026-03-11", "EGP", "-55.00"),
    ]


async def test_revenue_with_no_runs_has_an_empty_summary_and_guards_hold(
    client: Client,
) -> None:
    business = await sign_up(client)
    body = (await client.get(PATH, params=PARAMS, headers=business.headers)).json()
    assert body["reconciliation"] == [] and body["rows"] == []
    staff = await add_user(client, business, "staff")
    refused = await client.get(PATH, params=PARAMS, headers={"Authorization": f"Bearer {staff}"})
    assert refused.status_code == 403
    bad = await client.get(PATH, params={**PARAMS, "format": "xml"}, headers=business.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "format"


async def test_tenant_sees_only_its_own_reconciliation(
    client: Client, owner_engine: AsyncEngine
) -> None:
    mine, theirs = await sign_up(client), await sign_up(client)
    await add_run(owner_engine, theirs.tenant_id, "stripe", date(2026, 3, 9), discrepancy="open")
    body = (await client.get(PATH, params=PARAMS, headers=mine.headers)).json()
    assert body["reconciliation"] == []
    other = (await client.get(PATH, params=PARAMS, headers=theirs.headers)).json()
    assert other["reconciliation"][0]["open_discrepancies"] == 1


def test_the_ledger_no_longer_serves_the_revenue_report() -> None:
    paths = {route.path for route in ledger_routes.router().routes}
    assert "/api/v1/reports/revenue" not in paths
    assert "/api/v1/ledger/accounts" in paths


async def test_openapi_schema_lists_both_reports(client: Client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/reports/revenue" in schema["paths"]
    assert "/api/v1/reports/occupancy" in schema["paths"]
