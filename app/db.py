"""Declarative base, engine and session factories, and per-transaction tenant and lock
helpers."""

from __future__ import annotations

import asyncio
import functools
import random
import select
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import ClauseElement, DateTime, MetaData, Select, event, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app import traces
from app.errors import Contention, DomainError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        uuid.UUID: UUID(as_uuid=True),
    }


class TenantScoped:
    """Mixin: every tenant-owned table has a composite primary key (tenant_id, id)."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


# Seconds: a PostgreSQL that is down or unreachable fails a connect (and so a request: 503)
# within these, instead of hanging on the kernel's TCP timeout or a full pool.
CONNECT_TIMEOUT = 2
POOL_TIMEOUT = 5.0

# The API's and the worker's pools keep every connection they open, up to this many. With
# SQLAlchemy's overflow, a connection beyond the pool's size is closed when it comes back, so
# a burst that kept more than that many busy opened and closed a PostgreSQL backend for a
# good share of its requests (a fork, a backend start and a connect each): 154 in a
# 500-request rush for one slot (bench/contention.py), most of the machine's CPU in it.
SERVICE_POOL_SIZE = 30


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, pre_ping: bool = True
) -> AsyncEngine:
    """`pre_ping=False` only for an engine whose every use repeats itself once on a dead
    connection: even the ping's occasional round trip is then saved. The API and the worker
    use service_engine."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT,
        connect_args={"connect_timeout": CONNECT_TIMEOUT},
    )
    if pre_ping:
        # After PostgreSQL restarts, pooled connections are dead; they are replaced before a
        # request uses them, so recovery needs no restart and costs no failed request.
        event.listen(engine.sync_engine, "checkin", _note_idle)
        event.listen(engine.sync_engine, "checkout", _replace_if_dead)
    return engine


def service_engine(url: str) -> AsyncEngine:
    """The engine of a long-running process (the API, the worker): its pool keeps every
    connection it opens, up to SERVICE_POOL_SIZE."""
    return create_engine(url, pool_size=SERVICE_POOL_SIZE, max_overflow=0)


# A pooled connection back within this many seconds is pinged only when its socket has
# something to read: a server that ends a connection (restart, shutdown, terminated backend,
# idle timeout) says so and closes it, which makes the socket readable at once; an idle,
# healthy connection has nothing to read. Longer idle, or anything to read: a real ping
# (a round trip). A hot pool so skips the ping's round trip on nearly every checkout.
PING_AFTER_IDLE = 1.0
_IDLE_SINCE = "reckon.idle_since"


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def needs_ping(raw: psycopg.AsyncConnection[Any], idle_seconds: float) -> bool:
    """Whether a pooled psycopg connection idle for `idle_seconds` must be pinged before use
    (see PING_AFTER_IDLE): False only when it was back recently and its socket, polled
    without waiting, has nothing to read."""
    if idle_seconds >= PING_AFTER_IDLE or raw.closed or raw.broken:
        return True
    poller = select.poll()  # not select.select: no limit on the descriptor's number
    poller.register(raw.pgconn.socket, select.POLLIN)
    return bool(poller.poll(0))


def _replace_if_dead(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """The pool's checkout: ping when needs_ping says so; a failed ping makes the pool drop
    the connection and hand out another (as SQLAlchemy's pool_pre_ping does)."""
    idle_since = record.info.pop(_IDLE_SINCE, None)
    if idle_since is None:
        return  # just connected
    if not needs_ping(dbapi_connection.driver_connection, time.monotonic() - idle_since):
        return
    try:
        _PSYCOPG.do_ping(dbapi_connection)  # type: ignore[no-untyped-call]
    except Exception as error:
        raise DisconnectionError(f"a pooled connection failed its ping: {error}") from error


# connection_exception (08xxx), admin/crash shutdown and "starting up" (57P01-57P03).
_UNAVAILABLE_PREFIXES = ("08", "57P")


def is_unavailable(error: BaseException) -> bool:
    """PostgreSQL cannot be reached (down, restarting, the connection dropped, the pool
    exhausted): nothing this request did can have committed in the lost connection, so the
    answer is 'unavailable, retry', never a 500."""
    if isinstance(error, SATimeoutError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    state = getattr(error.orig, "sqlstate", None)
    if state is None:
        # No SQLSTATE: the client library failed before the server answered (refused,
        # reset, closed) - psycopg's OperationalError.
        return isinstance(error.orig, psycopg.OperationalError)
    return str(state).startswith(_UNAVAILABLE_PREFIXES)


@asynccontextmanager
async def driver(
    connection: AsyncConnection, sql: str, *, pipeline: bool = True
) -> AsyncIterator[Any]:
    """The psycopg connection under `connection` (in pipeline mode unless told otherwise), for
    hot statements that need none of SQLAlchemy's per-statement work. Its errors come out as
    SQLAlchemy's (DBAPIError subclasses, sqlstate on `.orig`), as if SQLAlchemy had run `sql`;
    a connection that broke is invalidated, so the pool does not hand it out again. A
    transaction stays the caller's to begin and end through `connection`."""
    raw: Any = await _driver_connection(connection)
    try:
        if pipeline:
            async with raw.pipeline():
                yield raw
        else:
            yield raw
    except psycopg.Error as error:
        broken = bool(raw.closed or raw.broken)
        if broken:
            await connection.invalidate()
        raise DBAPIError.instance(
            sql, None, error, psycopg.Error, connection_invalidated=broken
        ) from error


async def _driver_connection(connection: AsyncConnection) -> Any:
    """The psycopg connection under `connection`: read off it when it holds one (no I/O, so
    no greenlet hop, as get_raw_connection always takes), else as get_raw_connection gets
    it (reconnecting an invalidated one)."""
    sync = connection.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection.driver_connection
    return (await connection.get_raw_connection()).driver_connection


def values_list(
    rows: Sequence[Sequence[Any]], casts: Sequence[str | None]
) -> tuple[str, dict[str, Any]]:
    """`(...), (...)` of a multi-row INSERT ... VALUES sent through driver(): one named
    parameter per value (v<row>_<column>, cast to casts[column] when given). Cheaper for the
    client than arrays of text or JSON, which psycopg escapes element by element."""
    groups: list[str] = []
    params: dict[str, Any] = {}
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            name = f"v{r}_{c}"
            params[name] = value
            cast = casts[c]
            cells.append(f"CAST(%({name})s AS {cast})" if cast else f"%({name})s")
        groups.append(f"({', '.join(cells)})")
    return ", ".join(groups), params


_PSYCOPG = psycopg_dialect()  # type: ignore[no-untyped-call]


def psycopg_sql(statement: ClauseElement) -> str:
    """A SQLAlchemy statement as psycopg SQL (%(name)s parameters), compiled once at import
    by the modules that send it through `driver` or a Batch: one source for the SQL."""
    return str(statement.compile(dialect=_PSYCOPG))


_BATCH_KEY = "reckon.batch"


@dataclass(slots=True)
class Batch:
    """Writes queued on a session and sent in ONE round trip (psycopg pipeline mode, as
    `driver`), in the order they were added, inside the session's open transaction.

    For a hot write path whose statements need nothing back from each other: each one would
    otherwise cost a round trip and SQLAlchemy's per-statement Python. Anything the queued
    statements must precede runs only after `run` (see app/bookings/placing.py). Statements
    are psycopg's (%(name)s parameters); the first error aborts the rest and the transaction,
    and comes out as SQLAlchemy's DBAPIError, as from `driver`."""

    statements: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, sql: str, params: dict[str, Any]) -> None:
        self.statements.append((sql, params))

    async def run(self, session: AsyncSession, *, commit: bool = False) -> None:
        """Send what is queued (and, with `commit`, the COMMIT in the same round trip: the
        session's own commit then finds nothing left to do)."""
        queued, self.statements = self.statements, []
        if not queued and not commit:
            return
        connection = await session.connection()
        statements = [sql for sql, _ in queued]
        with traces.sql_spans([*statements, "COMMIT"] if commit else statements):
            await self._send(connection, queued, commit=commit)

    @staticmethod
    async def _send(
        connection: AsyncConnection, queued: list[tuple[str, dict[str, Any]]], *, commit: bool
    ) -> None:
        async with driver(connection, queued[0][0] if queued else "COMMIT") as raw:
            for sql, params in queued:
                await raw.execute(sql, params)
            if commit:
                await raw.commit()


async def run_together(
    session: AsyncSession, statements: Sequence[tuple[str, dict[str, Any] | None]]
) -> list[list[Any]]:
    """Statements (psycopg SQL) in one round trip in the session's transaction, as `driver`
    (beginning it if need be: the BEGIN rides along); the rows of each, as named tuples
    (an empty list for a statement that returns none). One statement alone skips pipeline
    mode: it needs no sync, and the rows come without SQLAlchemy's per-row work."""
    connection = await session.connection()
    with traces.sql_spans([sql for sql, _ in statements]):
        async with driver(connection, statements[0][0], pipeline=len(statements) > 1) as raw:
            cursors = []
            for sql, params in statements:
                cursor = await raw.execute(sql, params)
                cursor.row_factory = namedtuple_row
                cursors.append(cursor)
    return [await c.fetchall() if _has_rows(c) else [] for c in cursors]


def _has_rows(cursor: Any) -> bool:
    """Whether a psycopg cursor's statement returned rows (SELECT, or DML with RETURNING):
    read from its result's status, not `cursor.description`, which builds a Column object
    per column on each read (a tenth of placing's driver time, for nothing)."""
    result = cursor.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK


def batch_of(session: AsyncSession) -> Batch | None:
    """The batch writes on `session` join while one is open (open_batch), else None."""
    batch: Batch | None = session.info.get(_BATCH_KEY)
    return batch


@asynccontextmanager
async def open_batch(session: AsyncSession) -> AsyncIterator[Batch]:
    """Writes that support it (booking insert, payment, ledger entry, outbox, audit) queue in
    the yielded batch instead of running; the caller runs it before anything that must see
    them. Whatever is still queued when the block ends normally is then sent."""
    batch = Batch()
    session.info[_BATCH_KEY] = batch
    try:
        yield batch
        await batch.run(session)
    finally:
        session.info.pop(_BATCH_KEY, None)


async def owns_transaction(session: AsyncSession) -> bool:
    """True when the session's open transaction is its own: it took its connection from the
    engine and began it (not a session joined to a caller's connection, as in an idempotent
    request, where its transaction is a savepoint of the caller's). Only then may its COMMIT
    be sent early (Batch.run)."""
    if not isinstance(session.sync_session.get_bind(), Engine):
        return False
    connection = await session.connection()
    return not connection.in_nested_transaction()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def set_tenant_sql(tenant_id: uuid.UUID | str, lock_timeout_ms: int | None = None) -> str:
    """`SET LOCAL app.tenant_id = '<uuid>'` (and lock_timeout): statements, not set_config(),
    because Citus forwards SET LOCAL to the workers that hold the shards (with
    citus.propagate_set_commands = 'local') and never a set_config() call. A SET takes no
    bind parameter, so the value is a literal: a uuid.UUID round trip makes sure it is
    nothing but a uuid."""
    return "; ".join(set_tenant_statements(tenant_id, lock_timeout_ms))


def set_tenant_statements(
    tenant_id: uuid.UUID | str, lock_timeout_ms: int | None = None
) -> list[str]:
    """set_tenant_sql's statements one by one (pipeline mode sends one statement a query)."""
    literal = str(uuid.UUID(str(tenant_id)))
    statements = [f"SET LOCAL app.tenant_id = '{literal}'"]
    if lock_timeout_ms is not None:
        statements.append(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
    return statements


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """SET LOCAL app.tenant_id: row-level security scopes every query of this transaction."""
    await session.execute(text(set_tenant_sql(tenant_id)))


async def set_lock_timeout(session: AsyncSession, milliseconds: int = 2000) -> None:
    """Bound lock waits so a contended transaction fails fast instead of queueing forever."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{int(milliseconds)}ms'"))


async def set_tenant_and_lock_timeout(
    session: AsyncSession, tenant_id: uuid.UUID, milliseconds: int
) -> None:
    """set_tenant and set_lock_timeout in one round trip (two statements, simple protocol),
    for hot write paths."""
    await session.execute(text(set_tenant_sql(tenant_id, milliseconds)))


@asynccontextmanager
async def tenant_transaction(
    sessions: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID
) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction with the tenant set; commits on success."""
    async with sessions() as session, session.begin():
        await set_tenant(session, tenant_id)
        yield session


def rls_statements(table: str) -> list[str]:
    """SQL that puts a tenant table under row-level security keyed on app.tenant_id.

    Used by migrations. NULLIF makes an unset or reset setting match no rows instead of
    failing the uuid cast.
    """
    predicate = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate})",
    ]


async def lock_all(
    session: AsyncSession, query: Select[T], *, skip_locked: bool = False
) -> list[T]:
    """SELECT ... FOR UPDATE, and the ORM objects REFRESHED from the locked rows.

    Without populate_existing, SQLAlchemy hands back an object already in the session's
    identity map with the attributes it had when first read, before the lock: a decision
    taken on it is a decision on a stale row. Every row lock in the money path goes through
    here (see app/bookings/locks.py for the lock order)."""
    locked = query.with_for_update(skip_locked=skip_locked).execution_options(
        populate_existing=True
    )
    # The span's duration is the lock wait.
    with traces.span("db.lock", skip_locked=skip_locked):
        return list((await session.scalars(locked)).all())


# deadlock_detected, serialization_failure, lock_not_available (lock_timeout): the
# transaction lost a race and was rolled back whole; running it again is safe.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
CONTENTION_ATTEMPTS = 4


def is_transient(error: BaseException) -> bool:
    return isinstance(error, DBAPIError) and (
        getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES
    )


def retry_on_contention(
    error: type[DomainError] = Contention, attempts: int = CONTENTION_ATTEMPTS
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run a use case that owns its transaction again when it loses a race (deadlock,
    serialization failure, lock timeout), a bounded number of times with a short jittered
    pause; then raise `error` (a Conflict the edge turns into 409, or 503 + Retry-After for
    a provider's webhook), never a 500. Only for functions that begin and end their own
    transaction: a rolled-back transaction left nothing behind."""

    def decorate(use_case: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(use_case)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                try:
                    return await use_case(*args, **kwargs)
                except DBAPIError as failure:
                    if not is_transient(failure):
                        raise
                    if attempt == attempts:
                        raise error(attempts=attempts) from None
                    await asyncio.sleep(random.uniform(0.005, 0.03) * attempt)  # noqa: S311
            raise AssertionError("unreachable")

        return run

    return decorate
