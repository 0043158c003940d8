"""app.waiting.woken: a sleep until woken, with a deadline, that never swallows a
cancellation (asyncio.wait_for on Python 3.11 does when the event is set in the same turn of
the loop as the cancel: CPython gh-86296)."""

from __future__ import annotations

import asyncio

import pytest

from app.waiting import woken


async def test_woken_answers_whether_the_event_was_set_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await woken(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await woken(event, 5) is True


async def sleeper(event: asyncio.Event) -> None:
    """As the outbox relay and the inbox applier run: work, then sleep until woken, forever."""
    while True:
        await woken(event, 10)
        event.clear()


@pytest.mark.parametrize("turns", [0, 1, 2])
async def test_a_cancel_that_arrives_with_the_wake_up_stops_the_loop(turns: int) -> None:
    event = asyncio.Event()
    task = asyncio.create_task(sleeper(event))
    for _ in range(turns + 1):
        await asyncio.sleep(0)  # the task is asleep in woken()
    event.set()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=1)
    assert task in done, "the cancellation was lost: the loop went on sleeping"
    assert task.cancelled()
