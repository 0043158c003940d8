"""For the relay's and the applier's stop tests: a loop that sleeps until woken stops when it
is cancelled in the same turn of the event loop as it is woken (app.waiting.woken)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


async def stops_when_cancelled_as_woken(
    run: Callable[[], Coroutine[Any, Any, None]], wake: asyncio.Event
) -> bool:
    """Start `run()`, let it drain (nothing due) and fall asleep, then set `wake` (what its
    LISTEN connection does on a NOTIFY) and cancel it at once: whether it stopped."""
    running = asyncio.create_task(run())
    await asyncio.sleep(0.2)
    wake.set()
    running.cancel()
    done, _ = await asyncio.wait([running], timeout=5)
    return running in done and running.cancelled()
