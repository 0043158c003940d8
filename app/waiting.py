"""Sleeping until woken, with a deadline, without losing a cancellation."""

from __future__ import annotations

import asyncio


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Until `event` is set (True) or `seconds` pass (False); a cancellation always comes
    through. Not asyncio.wait_for: on Python 3.11, when the waiting task is cancelled in the
    same turn of the loop as the event is set, wait_for returns and the cancellation is lost
    (CPython gh-86296, fixed in 3.12). The outbox relay and the inbox applier sleep in a loop
    of these and stop by cancellation; a NOTIFY arriving with the stop kept them running
    (bench/outbox.py hung after its latency phase)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
