"""The acknowledgement's inbox writer (app/payments/inbox_writer.py) stores deliveries that
arrive together in one multi-row INSERT: each delivery still hears exactly its own outcome -
stored, a duplicate (of an earlier delivery or of one in the same statement), or the database's
refusal of its own payload - and nothing else in the statement is lost with a refused row."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.payments.inbox_writer import InboxWriter
from app.payments.provider_events import sandbox_event
from app.settings import app_role_url
from tests.inbox.support import owner_url
from tests.infra import libpq


def payload() -> dict[str, Any]:
    return {"id": f"evt_writer_{uuid.uuid4().hex}", "type": "payment.succeeded", "data": {}}


async def stored_ids(owner: AsyncEngine, event_ids: list[str]) -> dict[str, int]:
    async with owner.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT event_id, count(*) AS n FROM inbox WHERE event_id = ANY(:ids) "
                "GROUP BY event_id"
            ),
            {"ids": event_ids},
        )
        return {row.event_id: row.n for row in rows}


async def test_a_burst_with_a_duplicate_and_a_refused_payload_answers_each_delivery(
    owner_engine: AsyncEngine,
) -> None:
    writer = InboxWriter(libpq(app_role_url(owner_url(owner_engine))), size=4, flushers=1)
    try:
        events = [payload() for _ in range(30)]
        twice = events[7]
        bodies = [json.dumps(event) for event in events]
        # Valid JSON for Python, refused by jsonb: its delivery alone must hear about it.
        refused = {"id": f"evt_writer_{uuid.uuid4().hex}", "type": "payment.succeeded"}
        refused_body = json.dumps(refused)[:-1] + ', "note": "\\u0000"}'
        deliveries = [
            writer.store(sandbox_event(e), b) for e, b in zip(events, bodies, strict=True)
        ]
        deliveries.insert(12, writer.store(sandbox_event(twice), json.dumps(twice)))
        deliveries.insert(20, writer.store(sandbox_event(refused), refused_body))

        answers = await asyncio.gather(*deliveries, return_exceptions=True)

        errors = [a for a in answers if isinstance(a, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], DataError), errors
        assert isinstance(answers[20], DataError)
        stored = [a for a in answers if not isinstance(a, BaseException)]
        assert sum(1 for a in stored if a.duplicate) == 1
        assert len({a.inbox_id for a in stored if not a.duplicate}) == 30
        counts = await stored_ids(owner_engine, [e["id"] for e in events] + [refused["id"]])
        assert counts == {e["id"]: 1 for e in events}
    finally:
        await writer.close()


async def test_a_delivery_already_stored_is_a_duplicate_and_stores_nothing(
    owner_engine: AsyncEngine,
) -> None:
    writer = InboxWriter(libpq(app_role_url(owner_url(owner_engine))), size=2)
    try:
        event = payload()
        first = await writer.store(sandbox_event(event), json.dumps(event))
        again = await asyncio.gather(
            *(writer.store(sandbox_event(event), json.dumps(event)) for _ in range(5))
        )
        assert not first.duplicate and first.seq is not None
        assert all(answer.duplicate for answer in again)
        assert await stored_ids(owner_engine, [event["id"]]) == {event["id"]: 1}
    finally:
        await writer.close()


@pytest.mark.parametrize("size", [1, 3])
async def test_more_deliveries_than_connections_all_store(
    owner_engine: AsyncEngine, size: int
) -> None:
    writer = InboxWriter(libpq(app_role_url(owner_url(owner_engine))), size=size, flushers=2)
    try:
        events = [payload() for _ in range(200)]
        answers = await asyncio.gather(
            *(writer.store(sandbox_event(e), json.dumps(e)) for e in events)
        )
        assert not any(answer.duplicate for answer in answers)
        counts = await stored_ids(owner_engine, [e["id"] for e in events])
        assert len(counts) == 200 and set(counts.values()) == {1}
    finally:
        await writer.close()
