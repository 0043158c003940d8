"""The typed context every worker job receives as ctx["app"]."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import Settings
from app.worker.deps import JobDeps

# How long a stopping worker's background tasks (the relay's in-flight handlers) may take.
STOP_GRACE_SECONDS = 5.0

BackgroundTask = Callable[["WorkerContext"], Coroutine[Any, Any, None]]


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    deps: JobDeps = field(default_factory=JobDeps)
    background: list[BackgroundTask] = field(default_factory=list)
    # Set when the worker is told to stop: background tasks finish what they hold and return.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start_background_tasks(self) -> None:
        for task in self.background:
            self._tasks.append(asyncio.create_task(task(self)))

    async def close(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Ask the background tasks to stop, give them `grace_seconds` to finish what they
        hold, then cancel what is left (the relay hands back its leases either way)."""
        self.stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.redis.aclose()
        await self.engine.dispose()


def context_of(ctx: dict[str, Any]) -> WorkerContext:
    context = ctx["app"]
    assert isinstance(context, WorkerContext)
    return context
