"""The webhook acknowledgement's pool pings no connection before using it (a round trip per
delivery saved): a pooled connection PostgreSQL has dropped since, as after a restart, costs
the provider no failed delivery - the store runs once more on a new connection - and the event
is stored once."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.edge.asgi import sandbox_secret
from app.integrations import sandbox
from app.settings import Settings
from tests.checkout.support import Client, count


def capture_event() -> dict[str, Any]:
    """A signed-shape sandbox capture: the acknowledgement stores it without reading payments."""
    return {
        "id": f"evt_sandbox_{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "data": {
            "tenant_id": str(uuid.uuid4()),
            "payment_id": str(uuid.uuid4()),
            "amount_minor": 35_000,
            "currency": "EGP",
            "reason": None,
        },
    }


async def deliver(client: Client, settings: Settings, event: dict[str, Any]) -> Any:
    raw, header = sandbox.signed_event(event, sandbox_secret(settings), int(time.time()))
    return await client.post(
        "/webhooks/sandbox",
        content=raw,
        headers={sandbox.SIGNATURE_HEADER: header, "content-type": "application/json"},
    )


async def test_a_delivery_on_a_connection_postgres_dropped_is_still_acknowledged_once(
    client: Client, settings: Settings, owner_engine: AsyncEngine
) -> None:
    warm = await deliver(client, settings, capture_event())
    assert warm.status_code == 200 and warm.json()["status"] == "accepted", warm.text
    async with owner_engine.connect() as connection:
        dropped = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        )
    assert dropped, "the app's pooled connections were there to drop"

    event = capture_event()
    response = await deliver(client, settings, event)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    stored = "SELECT count(*) FROM inbox WHERE event_id = :event_id"
    assert await count(owner_engine, stored, event_id=event["id"]) == 1
