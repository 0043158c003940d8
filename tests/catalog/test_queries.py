"""The read helpers other domains call inside their own transaction, and atomic schedules."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog import service
from app.catalog.specs import OverrideInput, WeeklyInput
from app.db import tenant_transaction
from app.errors import NotFound
from app.money import Money
from app.tenancy.service import Principal
from tests.factories import make_catalog, sign_up

Client = AsyncTestClient[Litestar]


async def test_load_service_and_price_for_apply_the_branch_override(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    other = await client.post(
        "/api/v1/branches",
        headers=business.headers,
        json={"name": "Other", "timezone": "Africa/Cairo"},
    )
    special = await make_catalog(
        client,
        business,
        branch_prices=[{"branch_id": ids["branch_id"], "amount_minor": 7_500, "pricing": "fixed"}],
        cancellation_policy={
            "tiers": [
                {"hours_before": 24, "refund_bps": 10_000},
                {"hours_before": 2, "refund_bps": 5_000},
            ]
        },
    )
    async with tenant_transaction(sessions, business.tenant_id) as session:
        view = await service.load_service(
            session, business.tenant_id, uuid.UUID(special["service_id"])
        )
    at_branch = service.price_for(view, uuid.UUID(ids["branch_id"]))
    elsewhere = service.price_for(view, uuid.UUID(other.json()["id"]))
    assert at_branch.amount == Money(7_500, "EGP")
    assert elsewhere.amount == Money(10_000, "EGP")
    assert view.cancellation_policy.refund_bps(30) == 10_000
    assert view.cancellation_policy.refund_bps(3) == 5_000
    assert view.cancellation_policy.refund_bps(1) == 0
    assert view.duration_minutes == 60


async def test_load_service_is_scoped_to_the_tenant(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    alpha = await sign_up(client)
    beta = await sign_up(client)
    ids = await make_catalog(client, alpha)
    async with tenant_transaction(sessions, beta.tenant_id) as session:
        try:
            await service.load_service(session, alpha.tenant_id, uuid.UUID(ids["service_id"]))
        except NotFound:
            pass
        else:
            raise AssertionError("another tenant's service was readable")


async def test_load_schedules_returns_hours_overrides_and_time_off_in_range(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business, capacity=3)
    resource = ids["resource_id"]
    await client.put(
        f"/api/v1/resources/{resource}/schedule",
        headers=business.headers,
        json={
            "weekly": [
                {"weekday": 0, "start": "09:00", "end": "17:00", "branch_id": ids["branch_id"]}
            ],
            "overrides": [
                {"date": "2030-06-03", "closed": True},
                {"date": "2030-09-01", "start": "10:00", "end": "11:00"},
            ],
        },
    )
    for start, end in (
        ("2030-06-04T10:00:00Z", "2030-06-04T11:00:00Z"),
        ("2030-08-01T10:00:00Z", "2030-08-01T11:00:00Z"),
    ):
        response = await client.post(
            f"/api/v1/resources/{resource}/time-off",
            headers=business.headers,
            json={"start": start, "end": end},
        )
        assert response.status_code == 201
    async with tenant_transaction(sessions, business.tenant_id) as session:
        found = await service.load_schedules(
            session,
            business.tenant_id,
            [uuid.UUID(resource), uuid.uuid4()],
            date(2030, 6, 1),
            date(2030, 6, 30),
        )
    [schedule] = found.values()
    assert schedule.capacity == 3
    assert [(w.weekday, w.start, w.end) for w in schedule.weekly] == [(0, time(9), time(17))]
    assert [(o.on_date, o.closed) for o in schedule.overrides] == [(date(2030, 6, 3), True)]
    assert [t.start for t in schedule.time_off] == [datetime(2030, 6, 4, 10, tzinfo=UTC)]


async def test_concurrent_schedule_replacements_never_mix(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Parallel PUTs serialise on the resource row: the result is one of them, whole."""
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    actor = Principal(uuid.uuid4(), business.tenant_id, "owner", business.email)
    branch = uuid.UUID(ids["branch_id"])
    resource = uuid.UUID(ids["resource_id"])

    async def put_valid(hour: int) -> None:
        weekly = [
            WeeklyInput(day, f"{hour:02d}:00", f"{hour + 1:02d}:00", branch) for day in range(7)
        ]
        async with sessions() as session:
            await service.set_schedule(
                session,
                actor,
                resource,
                weekly=weekly,
                overrides=[OverrideInput(date(2030, 1, hour), True)],
            )

    await asyncio.gather(*(put_valid(hour) for hour in range(1, 11)))
    async with sessions() as session:
        detail = await service.get_resource(session, business.tenant_id, resource)
    hours = {w.start.hour for w in detail.schedule.weekly}
    assert len(detail.schedule.weekly) == 7
    assert len(hours) == 1
    assert [o.on_date.day for o in detail.schedule.overrides] == list(hours)
