"""A claim leases its rows through the primary key: it never reads the whole outbox, however
many rows the table holds (migration 0033)."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.outbox.conftest import make_tenant

ROWS, AGGREGATES, BATCH = 20_000, 2_000, 100


async def test_claims_never_scan_the_whole_outbox(owner_engine: AsyncEngine) -> None:
    tenant_id = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        # Ten events per aggregate, interleaved: every claim takes heads and their followers.
        await connection.execute(
            text(
                "INSERT INTO outbox (tenant_id, id, aggregate_type, aggregate_id, topic, payload) "
                "SELECT :tenant, gen_random_uuid(), 'booking', "
                "md5((g % :aggregates)::text)::uuid, 'booking.placed', '{}' "
                "FROM generate_series(1, :rows) g"
            ),
            {"tenant": tenant_id, "rows": ROWS, "aggregates": AGGREGATES},
        )
    async with owner_engine.connect() as connection:
        await connection.execute(text("ANALYZE outbox"))
        await connection.commit()
        claimed: list[uuid.UUID] = []
        # Past the plan cache's first five custom plans, into whatever plan it keeps.
        for _ in range(8):
            rows = (
                await connection.execute(
                    text("SELECT id FROM outbox_claim('plan-test', :batch, 30)"),
                    {"batch": BATCH},
                )
            ).all()
            scans = (
                await connection.execute(
                    text(
                        "SELECT seq_scan FROM pg_stat_xact_user_tables "
                        "WHERE relid = 'outbox'::regclass"
                    )
                )
            ).scalar_one()
            await connection.commit()
            assert rows, "the claim found nothing to lease"
            assert scans == 0, f"a claim of {len(rows)} rows scanned the whole outbox"
            claimed.extend(row.id for row in rows)
    assert len(set(claimed)) == len(claimed) >= 8 * BATCH
