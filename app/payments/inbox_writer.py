"""The webhook acknowledgement's own connections: verified events stored in the inbox with one
INSERT ... ON CONFLICT in autocommit on a small pool of plain psycopg connections, and the
applier woken after those commits, off the answer's path.

Why not the SQLAlchemy engine: an acknowledgement is one statement, and a checkout from
SQLAlchemy's async pool (its events, the greenlet bridge, the reset on return) cost more CPU
than the statement itself; at thousands of deliveries a second that is most of an API
process. The semantics are the engine's: a connection found dead (PostgreSQL restarted since
it was pooled) is thrown away with every idle one and the work done once more on a new
connection, which is safe because the work stores nothing twice; errors come out as
SQLAlchemy's DBAPIError (sqlstate on `.orig`) so the edge's error map treats them as it
treats every other database error (unavailable: 503, retry).

Deliveries that arrive together are stored together: a delivery waits in a queue, and a
flusher (at most `flushers` at a time) takes everything queued, up to inbox.MAX_ROWS, into one
multi-row INSERT ... ON CONFLICT DO NOTHING in autocommit; each delivery is answered when that
statement has committed. One delivery alone goes straight through (nothing waits for company),
and under a burst one statement and one commit serve dozens of deliveries: less CPU in this
process and in PostgreSQL per acknowledgement. Duplicates inside one statement are the
conflict's as any other (the first stores, the rest are `duplicate`). A statement one row of
which the database refuses (a payload jsonb cannot hold) is done again row by row, so only
that delivery hears the error.

The wake-up (`inbox_wake`, migration 0032) is its own transaction after the INSERT's commit,
as before, but the delivery's answer does not wait for it: one wake-up runs at a time per
process, and the stores that commit while it runs are woken together by the next one, for
the earliest of them (that is the call the first of them would have made: the later ones
would find it waiting and stay quiet). A wake-up lost to a crash costs latency only: the
applier also polls.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import structlog
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.payments import inbox
from app.payments import provider_events as events

T = TypeVar("T")
log = structlog.get_logger()


class InboxWriter:
    def __init__(
        self,
        conninfo: str,
        *,
        size: int = 16,
        flushers: int = 4,
        connect_timeout: float = 2.0,
        pool_timeout: float = 5.0,
    ) -> None:
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._flushers = flushers
        self._flushing = 0
        self._queue: list[_Waiting] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake_from: int | None = None
        self._waking: asyncio.Task[None] | None = None

    async def store(
        self,
        event: events.ProviderEvent,
        raw: str,
        *,
        bound_tenant_id: uuid.UUID | None = None,
    ) -> inbox.Stored:
        """Store the event (committed when this returns) and have the applier woken."""
        if inbox.needs_lookup(event):
            row = await self._once_more_on_disconnect(
                inbox.STORE_SQL,
                lambda pg: inbox.row_for(pg, event, raw, bound_tenant_id=bound_tenant_id),
            )
        else:
            row = await inbox.row_for(None, event, raw, bound_tenant_id=bound_tenant_id)
        waiting = _Waiting(row, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if self._flushing < self._flushers:
            self._flushing += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        stored = await waiting.answer
        if stored.seq is not None:
            self._wake(stored.seq)
        return stored

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: inbox.MAX_ROWS]
                del self._queue[: inbox.MAX_ROWS]
                await self._store_batch(batch)
        finally:
            self._flushing -= 1

    async def _store_batch(self, batch: list[_Waiting]) -> None:
        rows = [waiting.row for waiting in batch]
        try:
            stored = await self._once_more_on_disconnect(
                inbox.store_sql(len(rows)), lambda pg: inbox.store_rows(pg, rows)
            )
        except DataError as error:
            if len(batch) == 1:
                _fail(batch, error)
                return
            for waiting in batch:  # only the row the database refuses hears the error
                await self._store_batch([waiting])
            return
        except BaseException as error:
            _fail(batch, error)
            if not isinstance(error, Exception):
                raise
            return
        for waiting, answer in zip(batch, stored, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(answer)

    async def close(self) -> None:
        for task in [*self._tasks, *([self._waking] if self._waking else [])]:
            task.cancel()
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    def _wake(self, seq: int) -> None:
        if self._wake_from is None or seq < self._wake_from:
            self._wake_from = seq
        if self._waking is None:
            self._waking = asyncio.create_task(self._wake_while_stored())

    async def _wake_while_stored(self) -> None:
        try:
            while self._wake_from is not None:
                seq, self._wake_from = self._wake_from, None
                try:
                    await self._once_more_on_disconnect(inbox.WAKE_SQL, _wake_sql(seq))
                except (DBAPIError, PoolTimeout) as error:
                    # Stored and committed already: the applier finds it on its next poll.
                    log.warning("inbox.wake_failed", error=type(error).__name__)
        finally:
            self._waking = None

    async def _once_more_on_disconnect(
        self, sql: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        try:
            return await self._run(sql, work)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        return await self._run(sql, work)

    async def _run(
        self, sql: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        try:
            async with asyncio.timeout(self._pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout("no inbox connection free in time") from None
        try:
            connection = self._idle.pop() if self._idle else await self._connect(sql)
            try:
                result = await work(connection)
            except psycopg.Error as error:
                broken = bool(connection.closed or connection.broken)
                if broken:
                    # Whatever PostgreSQL did to this one it did to the idle ones as well.
                    await self._drop_idle()
                    await connection.close()
                else:
                    self._idle.append(connection)
                raise DBAPIError.instance(
                    sql, None, error, psycopg.Error, connection_invalidated=broken
                ) from error
            self._idle.append(connection)
            return result
        finally:
            self._slots.release()

    async def _connect(self, sql: str) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=int(self._connect_timeout)
            )
        except psycopg.Error as error:
            raise DBAPIError.instance(
                sql, None, error, psycopg.Error, connection_invalidated=True
            ) from error

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


@dataclass(frozen=True, slots=True)
class _Waiting:
    row: inbox.Row
    answer: asyncio.Future[inbox.Stored]


def _fail(batch: list[_Waiting], error: BaseException) -> None:
    for waiting in batch:
        if not waiting.answer.done():
            waiting.answer.set_exception(error)


def _wake_sql(seq: int) -> Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]:
    async def wake(pg: psycopg.AsyncConnection[Any]) -> None:
        await pg.execute(inbox.WAKE_SQL, {"seq": seq})

    return wake
