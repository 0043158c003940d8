"""The HTTP edge shared by every domain: the one DomainError -> problem+json map, the session
dependency, role guards and Idempotency-Key handling."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.serialization import encode_json
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from app import errors
from app.db import is_unavailable
from app.edge import idempotency
from app.tenancy.models import MANAGER_ROLES
from app.tenancy.service import Principal

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"

STATUS: list[tuple[type[errors.DomainError], int]] = [
    (errors.IdempotencyKeyReused, 422),
    (errors.IdempotencyKeyInProgress, 409),
    (errors.ValidationFailed, 422),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidCredentials, 401),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.RateLimited, 429),
    (errors.DependencyUnavailable, 503),
]

HTTP_SLUGS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "dependency_unavailable",
}


def status_for(error: errors.DomainError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 400


def problem(
    status: int, slug: str, title: str, detail: str | None = None, /, **extra: Any
) -> Response[bytes]:
    body: dict[str, Any] = {"type": slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {}
    if status in (429, 503) and "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return Response(encode_json(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_problem(error: errors.DomainError) -> Response[bytes]:
    extra: dict[str, Any] = {key: _jsonable(value) for key, value in error.context.items()}
    if isinstance(error, errors.ValidationFailed) and error.errors:
        extra["errors"] = error.errors
    return problem(status_for(error), error.slug, error.title, error.detail, **extra)


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return value


def handle_domain_error(_: Request[Any, Any, Any], exc: errors.DomainError) -> Response[bytes]:
    return domain_problem(exc)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, ValidationException):
        extra = exc.extra if isinstance(exc.extra, list) else None
        return problem(
            422, "validation_error", "The request is not valid", exc.detail, errors=extra
        )
    status = exc.status_code
    slug = HTTP_SLUGS.get(status, "http_error")
    title = slug.replace("_", " ").capitalize()
    detail = exc.detail if status < 500 else None
    return problem(status, slug, title, detail)


class ReckonRequest(Request[Any, Any, Any]):
    """Litestar's Request, but a JSON body nested past the parser's recursion limit is the
    client's 400 (msgspec raises RecursionError, which Litestar would answer with a 500)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException("The JSON body nests too deeply") from None


# Seconds a client should wait before retrying while PostgreSQL is unreachable.
DATABASE_RETRY_AFTER = 1


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if is_unavailable(exc) or (exc.__cause__ is not None and is_unavailable(exc.__cause__)):
        # PostgreSQL is down or restarting: the lost connection committed nothing of this
        # request, so the client may retry it (with its Idempotency-Key) once it is back.
        log.warning("request.database_unavailable", error_type=type(exc).__name__)
        return domain_problem(
            errors.DependencyUnavailable(
                "The database is unavailable; retry shortly",
                dependency="postgres",
                retry_after=DATABASE_RETRY_AFTER,
            )
        )
    log.exception("request.failed", error_type=type(exc).__name__)
    return problem(500, "internal_error", "Internal server error")


EXCEPTION_HANDLERS: Any = {
    errors.DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = state.sessions
    async with sessions(
        sync_session_class=EdgeSession, join_transaction_mode="create_savepoint"
    ) as session:
        yield session


def principal(request: Request[Any, Any, Any]) -> Principal:
    # Not `request.user`: on a route authentication skips, that raises (a 500), not a 401.
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise errors.Unauthenticated()
    return user


async def manager_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: owners and admins only (catalog writes, reports, ledger, payouts, users).

    A guard on a Router also guards the OPTIONS handler Litestar adds to each of its paths,
    and authentication skips OPTIONS (a CORS preflight carries no credentials), so there is
    no user in scope then. That answer names the allowed methods and nothing else, so it
    needs no role. Reading `connection.user` without a user in scope would raise a 500.
    """
    if connection.scope.get("method") == "OPTIONS":
        return
    user = connection.scope.get("user")
    if user is None:
        raise errors.Unauthenticated()
    if not isinstance(user, Principal) or user.role not in MANAGER_ROLES:
        raise errors.Forbidden("This action needs the owner or admin role")


Operation = Callable[[], Awaitable[tuple[int, Any]]]
Then = Callable[[Any], Awaitable[Any]]
# Test-only: an app-state entry called at the crash windows ("locked", "worked" - response
# written, not committed - and "committed") with the key's connection. Absent in production.
IDEMPOTENCY_PROBE = "idempotency_probe"
Probe = Callable[[str, AsyncConnection], Awaitable[None]]


@dataclass(slots=True)
class _KeyTransaction:
    """The transaction an idempotent request runs in, and the sessions that joined it."""

    connection: AsyncConnection
    sessions: list[Session] = field(default_factory=list)


# Set by idempotent() while its operation runs, in this task only.
_KEY_TRANSACTION: ContextVar[_KeyTransaction | None] = ContextVar(
    "reckon_idempotency_transaction", default=None
)


class EdgeSession(Session):
    """The request's session. Inside idempotent() it joins the key's transaction: a use
    case's `session.begin()` becomes a SAVEPOINT of it (join_transaction_mode
    "create_savepoint"), so the work and the stored response commit together. Elsewhere it
    is a plain Session."""

    def get_bind(self, *args: Any, **kwargs: Any) -> Any:
        joined = _KEY_TRANSACTION.get()
        if joined is None or kwargs.get("bind") is not None:
            return super().get_bind(*args, **kwargs)
        if self not in joined.sessions:
            joined.sessions.append(self)
        return joined.connection.sync_connection


def in_idempotent_transaction() -> bool:
    """True while an idempotent operation runs: nothing it writes is visible to others (the
    outbox relay included) until idempotent() commits, after the operation returned."""
    return _KEY_TRANSACTION.get() is not None


async def idempotent(
    request: Request[Any, Any, Any],
    tenant_id: uuid.UUID,
    operation: Operation,
    *,
    then: Then | None = None,
    refusal: Refusal | None = None,
) -> Response[bytes]:
    """Run a POST honouring its Idempotency-Key header: replay, refuse reuse, or execute once.

    With a key, the operation runs inside one transaction that holds the key's row lock; the
    request's session joins it, and the response is stored in it before it commits, so a
    retry after any crash either replays that response or (nothing committed) runs afresh.
    `then` completes a successful body with what only the commit can bring (it runs after
    the commit; its result replaces the stored body). A new key whose `refusal` holds is
    answered with it at once, stored under the key by the statement that records the key
    (the same round trip), and the operation does not run; without a key the caller decides
    on its refusal itself."""
    key = request.headers.get("idempotency-key")
    if key is None:
        response, content = await _execute(operation)
        return await _then(response, content, then)
    key = idempotency.check_key(key)
    fingerprint = idempotency.request_fingerprint(
        request.method, request.url.path, await request.body()
    )
    engine: AsyncEngine = request.app.state.engine
    probe: Probe | None = request.app.state.get(IDEMPOTENCY_PROBE)
    now = datetime.now(UTC)
    refused, answer = _early_answer(refusal)
    async with engine.connect() as connection:
        answered = await idempotency.record_key(
            connection, tenant_id, key, fingerprint, now, answer
        )
        if answered and refused is not None:
            return refused
        transaction = await connection.begin()
        try:
            stored = await idempotency.lock_key(connection, tenant_id, key, fingerprint, now)
            if stored is not None:
                await transaction.rollback()
                return Response(
                    stored.body,
                    status_code=stored.status,
                    media_type=stored.content_type,
                    headers={"Idempotent-Replayed": "true"},
                )
            if probe is not None:
                await probe("locked", connection)
            response, content = await _joined(connection, operation)
            status_code = response.status_code or 200
            if status_code >= 500:
                # Nothing of it commits; the key stays unlocked for the retry.
                await transaction.rollback()
                return response
            stored = idempotency.StoredResponse(
                status_code, response.content, response.media_type or "application/json"
            )
            # Without a probe, the COMMIT rides with the stored response (one round trip).
            await idempotency.store_response(
                connection, tenant_id, key, stored, commit=probe is None
            )
            if probe is not None:
                await probe("worked", connection)
            await transaction.commit()
        except BaseException:
            if transaction.is_active:
                with suppress(Exception):
                    await transaction.rollback()
            raise
        if probe is not None:
            await probe("committed", connection)
        if then is None or content is None:
            return response
        completed = await _then(response, content, then)
        if completed.content != response.content:
            await idempotency.replace_body(connection, tenant_id, key, completed.content)
        return completed


@dataclass(frozen=True, slots=True)
class Refusal:
    """What an operation would answer before doing any work - `error`'s problem - when
    `condition` holds (a read: see idempotency.EarlyAnswer, with its `params`)."""

    error: errors.DomainError
    condition: str
    params: dict[str, Any]


def _early_answer(
    refusal: Refusal | None,
) -> tuple[Response[bytes] | None, idempotency.EarlyAnswer | None]:
    """The refusal's response, and the same stored under a key exactly as idempotent() stores
    the operation's own, so a retry replays it."""
    if refusal is None:
        return None, None
    response = domain_problem(refusal.error)
    stored = idempotency.StoredResponse(status_for(refusal.error), response.content, PROBLEM_JSON)
    return response, idempotency.EarlyAnswer(stored, refusal.condition, refusal.params)


async def _joined(
    connection: AsyncConnection, operation: Operation
) -> tuple[Response[bytes], Any | None]:
    """Run the operation with the request's session joined to `connection`'s transaction;
    afterwards no session is left holding a savepoint of it (one the route opened by reading
    outside a use case is rolled back, as closing the request's session always did)."""
    joined = _KeyTransaction(connection)
    token = _KEY_TRANSACTION.set(joined)
    try:
        return await _execute(operation)
    finally:
        _KEY_TRANSACTION.reset(token)
        for session in joined.sessions:
            await greenlet_spawn(session.close)


async def _execute(operation: Operation) -> tuple[Response[bytes], Any | None]:
    """The response, and the content it was built from (None for a problem)."""
    try:
        status, content = await operation()
    except errors.DomainError as error:
        return domain_problem(error), None
    response = Response(encode_json(content), status_code=status, media_type="application/json")
    return response, content


async def _then(
    response: Response[bytes], content: Any | None, then: Then | None
) -> Response[bytes]:
    if then is None or content is None:
        return response
    completed = await then(content)
    return Response(
        encode_json(completed),
        status_code=response.status_code,
        media_type=response.media_type,
    )
