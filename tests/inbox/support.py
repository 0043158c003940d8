"""Driving the inbox applier in tests: webhooks are acknowledged once stored and applied by the
applier afterwards, so a test that asserts an effect drains the applier first.

`apply_inbox` runs the real applier (app/worker/jobs/inbox.py) against the test database until
nothing is due, as tests/checkout/support.py `relay_due` does for the outbox. `applied` turns a
webhook answer into what the applier did with it, in the shape the webhook used to answer
before acknowledgement and application were split ({"status": "processed" | "rejected" |
"ignored", "detail": ...}), so the assertions stay what they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine, session_factory
from app.settings import app_role_url
from app.worker.jobs.inbox import Applier, ApplierConfig
from tests.infra import libpq

# The owner URL of the test database, set by the `inbox_database` fixture (tests/checkout and
# tests/inbox use it automatically), so helpers that only see a client can drain the inbox.
DATABASE: dict[str, str] = {}
MAX_ROUNDS = 20
_MAKE_DUE = text(
    "UPDATE inbox SET available_at = now(), locked_until = NULL WHERE status = 'pending' "
    "AND (available_at > now() OR locked_until > now())"
)


def owner_url(owner: AsyncEngine | None = None) -> str:
    if owner is not None:
        return owner.url.render_as_string(hide_password=False)
    return DATABASE["url"]


async def apply_inbox(owner: AsyncEngine | None = None, config: ApplierConfig | None = None) -> int:
    """Run the applier until nothing is due (as the application role, under RLS); returns the
    number of attempts it made."""
    engine = create_engine(app_role_url(owner_url(owner)), pool_size=8)
    applier = Applier(engine, session_factory(engine), config=config)
    try:
        total = 0
        for _ in range(MAX_ROUNDS):
            total += await applier.drain()
            # Events waiting out a retry's backoff: as if the delay had passed.
            async with applier.bookkeeping.connect() as connection:
                waiting = await connection.execute(_MAKE_DUE)
            if waiting.rowcount == 0:
                return total
        raise AssertionError(f"the inbox still has pending events after {MAX_ROUNDS} rounds")
    finally:
        await applier.close()
        await engine.dispose()


@contextlib.asynccontextmanager
async def running_applier(
    owner: AsyncEngine | None = None, config: ApplierConfig | None = None
) -> AsyncIterator[Applier]:
    """The applier running as in the worker (LISTEN + poll) while the body runs; on exit it is
    stopped and the inbox drained, so every acknowledged event has been applied."""
    url = app_role_url(owner_url(owner))
    engine = create_engine(url, pool_size=8)
    applier = Applier(engine, session_factory(engine), config=config, listen_url=libpq(url))
    task = asyncio.create_task(applier.run())
    try:
        yield applier
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()
        await apply_inbox(owner, config)


@dataclass(frozen=True, slots=True)
class Applied:
    """A webhook answer as the assertions read it: the applier's outcome once it was stored."""

    status_code: int
    body: Any
    text: str

    def json(self) -> Any:
        return self.body


async def applied(
    response: httpx.Response, owner: AsyncEngine | None = None
) -> Applied | httpx.Response:
    """Drain the applier, then answer with what it did to the event this response stored.
    Errors and duplicates are returned as the edge answered them."""
    if response.status_code != 200 or response.json().get("status") != "accepted":
        return response
    body = response.json()
    await apply_inbox(owner)
    outcome = await outcome_of(uuid.UUID(body["inbox_id"]), owner)
    status, _, detail = outcome.partition(": ")
    result = {"status": status, "detail": detail}
    return Applied(200, result, str(result))


async def outcome_of(inbox_id: uuid.UUID, owner: AsyncEngine | None = None) -> str:
    async with await psycopg.AsyncConnection.connect(libpq(owner_url(owner))) as connection:
        cursor = await connection.execute(
            "SELECT status, outcome, last_error FROM inbox WHERE id = %s", (inbox_id,)
        )
        row = await cursor.fetchone()
    assert row is not None and row[0] == "done", row
    return str(row[1])


# A capture's ledger entry posted behind the applier's back (the payment still open): the
# plain capture's own entry then meets its unique key.
_POSTED_CAPTURE = text(
    "WITH e AS (INSERT INTO journal_entries (tenant_id, id, idempotency_key, reason, "
    "occurred_at, booking_id, payment_id) VALUES (:t, gen_random_uuid(), "
    ":key, 'payment', now(), :b, :p) "
    "RETURNING id) INSERT INTO postings (tenant_id, id, entry_id, account_id, "
    "amount_minor, currency) SELECT :t, gen_random_uuid(), e.id, a.id, "
    "CASE a.code WHEN 'clearing:sandbox' THEN :amount ELSE -:amount END, 'EGP' "
    "FROM e, ledger_accounts a WHERE a.tenant_id = :t "
    "AND a.code IN ('clearing:sandbox', 'receivable:customer')"
)


async def post_capture_entry(
    owner: AsyncEngine, tenant_id: uuid.UUID, booking: dict[str, Any], amount: int
) -> None:
    """The capture entry of `booking`'s payment, under the key the capture posts it with."""
    payment_id = uuid.UUID(booking["payment"]["id"])
    async with owner.begin() as connection:
        await connection.execute(
            _POSTED_CAPTURE,
            {
                "t": tenant_id,
                "p": payment_id,
                "b": uuid.UUID(booking["id"]),
                "amount": amount,
                "key": f"payment:{payment_id}:captured",
            },
        )
