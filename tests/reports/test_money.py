"""Money collected vs revenue earned (app.reports.money): every figure equals a sum of the
ledger's postings, computed here independently from the entries the ledger lists."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.errors import ValidationFailed
from app.ledger import service as ledger
from app.ledger.service import Entry
from app.reports.money import money_report, period_starts
from tests.factories import sign_up
from tests.ledger.conftest import lines, post
from tests.reports.support import Client

TZ = "Africa/Cairo"  # UTC+2 in March
D9 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
D10 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
D10_LATE = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)  # the 11th in Cairo
S1, S2 = str(uuid.uuid4()), str(uuid.uuid4())


async def _scenario(sessions: async_sessionmaker[AsyncSession], tenant: uuid.UUID) -> None:
    """Two bookings: one paid on the 9th and completed on the 10th (then partly refunded out
    of revenue), one paid on the 10th and refunded before its visit on the 11th; a capture
    reversed; a reversed refund."""
    b1, b2, b3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    dims1 = {"service_id": S1, "branch_id": "A"}
    dims2 = {"service_id": S2, "branch_id": "A"}
    for booking, dims, amount, when in ((b1, dims1, 35_000, D9), (b2, dims2, 20_000, D10)):
        await post(
            sessions,
            tenant,
            lines(
                ("receivable:customer", "asset", amount), ("deferred_revenue", "liability", -amount)
            ),
            reason="booking",
            occurred_at=when,
            booking_id=booking,
            dimensions=dims,
        )
        await post(  # a capture has no dimensions of its own
            sessions,
            tenant,
            lines(("clearing:stripe", "asset", amount), ("receivable:customer", "asset", -amount)),
            reason="payment",
            occurred_at=when,
            booking_id=booking,
        )
    await post(
        sessions,
        tenant,
        lines(("expense:fees:stripe", "expense", 900), ("clearing:stripe", "asset", -900)),
        reason="provider_fee",
        occurred_at=D9,
        booking_id=b1,
    )
    await post(
        sessions,
        tenant,
        lines(
            ("deferred_revenue", "liability", 35_000),
            (f"revenue:service:{S1}", "revenue", -35_000),
            ("expense:commission", "expense", 3_500),
            ("payable:staff:r1", "liability", -3_500),
        ),
        reason="revenue",
        occurred_at=D10,
        booking_id=b1,
        dimensions=dims1,
    )
    await post(
        sessions,
        tenant,
        lines((f"revenue:service:{S1}", "revenue", 5_000), ("clearing:stripe", "asset", -5_000)),
        reason="refund",
        occurred_at=D10_LATE,
        booking_id=b1,
        dimensions=dims1,
    )
    refund = await post(
        sessions,
        tenant,
        lines(("deferred_revenue", "liability", 20_000), ("clearing:stripe", "asset", -20_000)),
        reason="refund",
        occurred_at=D10_LATE,
        booking_id=b2,
        dimensions=dims2,
    )
    # A third booking's capture, reversed the same day; and b2's refund failed and reversed.
    await post(
        sessions,
        tenant,
        lines(("receivable:customer", "asset", 7_000), ("deferred_revenue", "liability", -7_000)),
        reason="booking",
        occurred_at=D10,
        booking_id=b3,
        dimensions=dims2,
    )
    capture = await post(
        sessions,
        tenant,
        lines(("clearing:stripe", "asset", 7_000), ("receivable:customer", "asset", -7_000)),
        reason="payment",
        occurred_at=D10,
        booking_id=b3,
    )
    async with tenant_transaction(sessions, tenant) as session:
        await ledger.reverse(
            session, tenant, capture.id, f"rev:{capture.id}", "correction", occurred_at=D10
        )
        await ledger.reverse(
            session, tenant, refund.id, f"rev:{refund.id}", "refund_failed", occurred_at=D10_LATE
        )


def _expected(entries: list[Entry]) -> dict[str, dict[str, int]]:
    """Per local day: the figures summed from postings, entry by entry."""
    reasons = {e.id: e.reason for e in entries}
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in entries:
        day = e.occurred_at.astimezone(ZoneInfo(TZ)).date().isoformat()
        reason = reasons.get(e.reverses_entry_id) if e.reverses_entry_id else e.reason
        for p in e.postings:
            code, amount = p.account_code, p.amount.amount_minor
            if reason == "payment" and code == "receivable:customer":
                out[day]["captured"] -= amount
            if reason == "refund" and code.startswith("clearing:"):
                out[day]["refunded"] -= amount
            if code.startswith("revenue:"):
                out[day]["earned"] -= amount
            if code.startswith("expense:fees:"):
                out[day]["fees"] += amount
            if code == "expense:commission":
                out[day]["commissions"] += amount
    return out


async def test_collected_and_earned_per_day_equal_the_sums_of_the_postings(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    business = await sign_up(client, timezone=TZ)
    await _scenario(sessions, business.tenant_id)
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    entries = await ledger.list_entries(
        sessions(), business.tenant_id, start=since, end=until, limit=500
    )
    expected = _expected(entries)

    report = await money_report(
        sessions(),
        business.tenant_id,
        start=date(2026, 3, 1),
        end=date(2026, 3, 31),
        timezone=TZ,
        period="day",
    )

    got = {
        r.period.isoformat(): {
            "captured": r.captured_minor,
            "refunded": r.refunded_minor,
            "earned": r.earned_minor,
            "fees": r.fees_minor,
            "commissions": r.commissions_minor,
        }
        for r in report.rows
        if r.period
    }
    for day, figures in expected.items():
        for name, value in figures.items():
            assert got[day][name] == value, (day, name)
    # The figures themselves, so a wrong rule in both places is caught too.
    assert got["2026-03-09"]["captured"] == 35_000 and got["2026-03-09"]["earned"] == 0
    assert got["2026-03-10"]["captured"] == 20_000  # 7,000 captured and reversed
    assert got["2026-03-10"]["earned"] == 35_000
    assert got["2026-03-11"]["refunded"] == 5_000  # 20,000 refunded and reversed
    assert got["2026-03-11"]["earned"] == -5_000
    [total] = report.totals
    assert total.collected_minor == 35_000 + 20_000 - 5_000
    assert total.earned_minor == 30_000
    assert total.fees_minor == 900 and total.commissions_minor == 3_500


async def test_a_capture_is_grouped_by_its_bookings_service(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    business = await sign_up(client, timezone=TZ)
    await _scenario(sessions, business.tenant_id)

    report = await money_report(
        sessions(),
        business.tenant_id,
        start=date(2026, 3, 9),
        end=date(2026, 3, 11),
        timezone=TZ,
        period=None,
        dimension="service",
    )

    by_service = {r.dimension: r for r in report.rows}
    assert set(by_service) == {S1, S2}
    assert by_service[S1].collected_minor == 35_000 - 5_000
    assert by_service[S1].earned_minor == 30_000
    assert by_service[S2].collected_minor == 20_000
    assert by_service[S2].earned_minor == 0
    assert sum(r.collected_minor for r in report.rows) == report.totals[0].collected_minor


async def test_bad_groupings_and_ranges_are_validation_errors(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    business = await sign_up(client, timezone=TZ)
    for kwargs in (
        {"period": "year"},
        {"dimension": "customer"},
        {"start": date(2026, 3, 2), "end": date(2026, 3, 1)},
    ):
        args = {"start": date(2026, 3, 1), "end": date(2026, 3, 2), **kwargs}
        with pytest.raises(ValidationFailed):
            await money_report(sessions(), business.tenant_id, timezone=TZ, **args)  # type: ignore[arg-type]


def test_period_starts_cover_the_range_with_monday_weeks_and_first_of_month() -> None:
    assert list(period_starts(date(2026, 3, 30), date(2026, 4, 1), "day")) == [
        date(2026, 3, 30),
        date(2026, 3, 31),
        date(2026, 4, 1),
    ]
    assert list(period_starts(date(2026, 3, 4), date(2026, 3, 17), "week")) == [
        date(2026, 3, 2),
        date(2026, 3, 9),
        date(2026, 3, 16),
    ]
    assert list(period_starts(date(2026, 1, 31), date(2026, 3, 1), "month")) == [
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
