"""Webhooks under hostile input: odd signature headers and pathological bodies are a 400
problem, never a 500, and nothing is read or written before the signature is checked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.integrations import kashier, sandbox, webhook_signing
from tests.checkout.support import Client, balance, book, count, get_booking, open_shop
from tests.checkout.test_provider_webhooks import kashier_payload, send_kashier
from tests.conftest import STRIPE_WEBHOOK_SECRET

# Far deeper than Python's recursion limit: json.loads raises RecursionError on it.
DEPTH = 100_000


def nested(depth: int = DEPTH) -> bytes:
    return b'{"data":' + b"[" * depth + b"]" * depth + b"}"


def assert_invalid_signature(response: Any) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "invalid_signature"


@contextmanager
def statements(app: Litestar) -> Iterator[list[str]]:
    """Every SQL statement the app's own engine runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    sync_engine = app.state.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)


@pytest.mark.parametrize("path", ["/webhooks/stripe", "/webhooks/sandbox"])
async def test_non_ascii_v1_in_signature_header_is_400_invalid_signature(
    client: Client, owner_engine: AsyncEngine, path: str
) -> None:
    raw = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    header = f"t={int(time.time())},v1=\u00e9\u00e9\u00e9".encode("latin-1")
    signature = "Stripe-Signature" if path.endswith("stripe") else sandbox.SIGNATURE_HEADER

    response = await client.post(
        path,
        content=raw,
        headers={signature: header, "content-type": "application/json"},  # type: ignore[dict-item]
    )

    assert_invalid_signature(response)
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0


async def test_deeply_nested_json_to_kashier_is_400_and_stores_nothing(
    client: Client, owner_engine: AsyncEngine
) -> None:
    response = await client.post(
        "/webhooks/kashier",
        content=nested(),
        headers={kashier.SIGNATURE_HEADER: "0" * 64, "content-type": "application/json"},
    )

    assert_invalid_signature(response)
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0


async def test_deeply_nested_json_to_stripe_is_400_even_when_signed(
    client: Client, owner_engine: AsyncEngine
) -> None:
    raw = nested()
    header = webhook_signing.sign(raw, STRIPE_WEBHOOK_SECRET, int(time.time()))

    response = await client.post(
        "/webhooks/stripe",
        content=raw,
        headers={"Stripe-Signature": header, "content-type": "application/json"},
    )

    assert_invalid_signature(response)
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0


@pytest.mark.parametrize(
    "signature",
    ["not-a-signature", "\u00e9" * 64, "g" * 64, ""],
    ids=["short", "non-ascii", "not-hex", "empty"],
)
async def test_kashier_malformed_signature_is_refused_before_any_database_read(
    client: Client, app: Litestar, signature: str
) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop, provider="kashier")
    payload = kashier_payload(booking["payment"]["id"], "200.00")

    with statements(app) as seen:
        response = await client.post(
            "/webhooks/kashier",
            content=json.dumps(payload).encode(),
            headers={
                kashier.SIGNATURE_HEADER: signature.encode("latin-1"),  # type: ignore[dict-item]
                "content-type": "application/json",
            },
        )

    assert_invalid_signature(response)
    assert seen == []


async def test_kashier_wrong_signature_on_a_real_payment_only_reads(
    client: Client, app: Litestar, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop, provider="kashier")
    payload = kashier_payload(booking["payment"]["id"], "200.00")

    with statements(app) as seen:
        response = await send_kashier(client, payload, key="someone-else's-key")

    assert_invalid_signature(response)
    writes = [s for s in seen if s.lstrip().split(None, 1)[0].upper() in WRITES]
    assert writes == []
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0
    assert (await get_booking(client, shop, booking["id"]))["status"] == "pending_payment"


WRITES = {"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE"}


async def test_kashier_business_key_that_cannot_be_decrypted_is_503_and_stores_nothing(
    client: Client, owner_engine: AsyncEngine
) -> None:
    shop = await open_shop(client)
    saved = await client.put(
        "/api/v1/settings/providers",
        headers=shop.business.headers,
        json={
            "credentials": {
                "kashier": {"merchant_id": "MID-9", "api_key": "tenant-key", "secret_key": "s"}
            }
        },
    )
    assert saved.status_code == 200, saved.text
    booking = await book(client, shop, provider="kashier")
    async with owner_engine.begin() as connection:  # sealed under a secret we no longer hold
        await connection.execute(
            text(
                "UPDATE tenant_provider_settings SET sealed = 'v1.00000000.AAAA' "
                "WHERE tenant_id = :t AND provider = 'kashier'"
            ),
            {"t": shop.business.tenant_id},
        )

    response = await send_kashier(
        client, kashier_payload(booking["payment"]["id"], "200.00"), key="tenant-key"
    )

    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await count(owner_engine, "SELECT count(*) FROM inbox") == 0
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:kashier") == 0
