"""The revenue report is computed from postings and agrees with account balances."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import ValidationFailed
from app.ledger import accounts, reports
from tests.factories import Business, sign_up
from tests.ledger.scenario import BRANCH_A, BRANCH_B, post_month

MARCH_9, MARCH_10, MARCH_11 = date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)
Figures = tuple[int, int, int, int, int]


@pytest.fixture
async def cairo(client: AsyncTestClient[Litestar]) -> Business:
    return await sign_up(client, timezone="Africa/Cairo")


def _figures(row: reports.RevenueRow) -> Figures:
    return (
        row.gross_minor,
        row.refunds_minor,
        row.fees_minor,
        row.commissions_minor,
        row.net_minor,
    )


async def test_revenue_by_local_day_with_every_figure(
    sessions: async_sessionmaker[AsyncSession],
    cairo: Business,
) -> None:
    await post_month(sessions, cairo.tenant_id)
    async with sessions() as session:
        report = await reports.revenue_report(
            session, cairo.tenant_id, start=MARCH_9, end=MARCH_11, group_by="day"
        )
    assert report.timezone == "Africa/Cairo"
    assert {(r.period, r.currency): _figures(r) for r in report.rows} == {
        (MARCH_10, "EGP"): (10_000, 0, 320, 1_500, 9_680),
        (MARCH_10, "USD"): (700, 0, 0, 0, 700),
        # The reversed completion nets out of gross; both refunds land on the local 11th.
        (MARCH_11, "EGP"): (0, 5_500, 0, 0, -5_500),
    }
    assert {r.currency: _figures(r) for r in report.totals} == {
        "EGP": (10_000, 5_500, 320, 1_500, 4_180),
        "USD": (700, 0, 0, 0, 700),
    }


async def test_revenue_by_branch_and_by_month_and_branch(
    sessions: async_sessionmaker[AsyncSession],
    cairo: Business,
) -> None:
    await post_month(sessions, cairo.tenant_id)
    async with sessions() as session:
        by_branch = await reports.revenue_report(
            session, cairo.tenant_id, start=MARCH_9, end=MARCH_11, group_by="branch"
        )
    async with sessions() as session:
        by_both = await reports.revenue_report(
            session,
            cairo.tenant_id,
            start=date(2026, 3, 1),
            end=date(2026, 3, 31),
            group_by="month,branch",
        )
    assert {(r.dimension, r.currency): _figures(r) for r in by_branch.rows} == {
        (BRANCH_A, "EGP"): (10_000, 2_500, 320, 1_500, 7_180),
        (BRANCH_A, "USD"): (700, 0, 0, 0, 700),
        (BRANCH_B, "EGP"): (0, 3_000, 0, 0, -3_000),
    }
    # The whole month includes the completion on the 8th.
    march = {(r.period, r.dimension, r.currency): _figures(r) for r in by_both.rows}
    assert march[(date(2026, 3, 1), BRANCH_A, "EGP")] == (10_999, 2_500, 320, 1_500, 8_179)


async def test_report_totals_equal_ledger_balances(
    sessions: async_sessionmaker[AsyncSession],
    cairo: Business,
) -> None:
    """Over all time, gross - refunds charged to revenue is minus the revenue balances, and
    fees and commissions are the balances of their expense accounts."""
    await post_month(sessions, cairo.tenant_id)
    async with sessions() as session:
        report = await reports.revenue_report(
            session,
            cairo.tenant_id,
            start=date(2026, 1, 1),
            end=date(2026, 12, 31),
            group_by="service",
        )
    balances = await accounts.list_accounts(sessions(), cairo.tenant_id)
    egp = {a.code: a.balance_minor for a in balances if a.currency == "EGP"}
    total = next(r for r in report.totals if r.currency == "EGP")
    revenue = sum(v for code, v in egp.items() if code.startswith("revenue:"))
    deferred_refunds = 3_000
    assert total.gross_minor - (total.refunds_minor - deferred_refunds) == -revenue
    assert total.fees_minor == egp["expense:fees:stripe"]
    assert total.commissions_minor == egp["expense:commission"]
    assert sum(r.gross_minor for r in report.rows if r.currency == "EGP") == total.gross_minor


def test_csv_formats_amounts_by_currency_exponent() -> None:
    row = reports.RevenueRow(MARCH_10, None, "KWD", 12_345, 1_000, 5, 0)
    jpy = reports.RevenueRow(MARCH_10, None, "JPY", 500, 0, 0, 0)
    report = reports.RevenueReport(MARCH_10, MARCH_10, "UTC", ("day",), [row, jpy], [])
    parsed = list(csv.reader(io.StringIO(reports.revenue_csv(report))))
    assert parsed == [
        reports.CSV_COLUMNS,
        ["2026-03-10", "", "KWD", "12.345", "1.000", "0.005", "0.000", "11.340"],
        ["2026-03-10", "", "JPY", "500", "0", "0", "0", "500"],
    ]


@pytest.mark.parametrize("group_by", ["", "day,week", "branch,service", "year", "day,nope"])
def test_invalid_grouping_is_refused(group_by: str) -> None:
    with pytest.raises(ValidationFailed):
        reports.parse_group_by(group_by)
