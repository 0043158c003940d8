"""A relay cancelled while a NOTIFY wakes it stops: its sleep between drains does not
swallow the cancellation (app.waiting.woken)."""

from __future__ import annotations

from app.outbox.dispatch import Dispatcher
from tests.outbox.conftest import RelayFactory
from tests.stopping import stops_when_cancelled_as_woken


async def test_a_relay_cancelled_as_it_is_woken_stops(make_relay: RelayFactory) -> None:
    for _ in range(5):
        relay = make_relay(Dispatcher())
        assert await stops_when_cancelled_as_woken(relay.run, relay._wake)
