"""A relay cancelled while a NOTIFY wakes it stops: its sleep between drains does not
swallow the cancellation (app.waiting.woken)."""

from __future__ import annotations

import asyncio

from app.outbox.dispatch import Dispatcher
from tests.outbox.conftest import RelayFactory


async def test_a_relay_cancelled_as_it_is_woken_stops(make_relay: RelayFactory) -> None:
    for _ in range(5):
        relay = make_relay(Dispatcher())
        running = asyncio.create_task(relay.run())
        await asyncio.sleep(0.2)  # drained (nothing due), asleep until woken
        relay._wake.set()  # what its LISTEN connection does on a NOTIFY
        running.cancel()
        done, _ = await asyncio.wait([running], timeout=5)
        assert running in done, "the relay went on running after it was cancelled"
        assert running.cancelled()
