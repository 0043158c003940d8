"""The HTTP edge shared by every domain: the one DomainError -> problem+json map, the session
dependency, role guards and Idempotency-Key handling."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import structlog
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.serialization import encode_json
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app import errors, idempotency
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


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("request.failed", error_type=type(exc).__name__)
    return problem(500, "internal_error", "Internal server error")


EXCEPTION_HANDLERS: Any = {
    errors.DomainError: handle_domain_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = state.sessions
    async with sessions() as session:
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

# The Idempotency-Key whose operation is running in this task, if any.
_RUNNING_KEY: ContextVar[str | None] = ContextVar("reckon_idempotency_key", default=None)


def _mark_key_executed(session: Session) -> None:
    """before_commit of any transaction an idempotent operation commits: record, in that same
    transaction, that the request's work is done (so a lost response is never re-executed)."""
    key = _RUNNING_KEY.get()
    if key is not None:
        session.execute(idempotency.MARK_EXECUTED, {"key": key})


def install_idempotency_marker() -> None:
    if not event.contains(Session, "before_commit", _mark_key_executed):
        event.listen(Session, "before_commit", _mark_key_executed)


async def idempotent(
    request: Request[Any, Any, Any], tenant_id: uuid.UUID, operation: Operation
) -> Response[bytes]:
    """Run a POST honouring its Idempotency-Key header: replay, refuse reuse, or execute once."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return await _execute(operation)
    key = idempotency.check_key(key)
    fingerprint = idempotency.request_fingerprint(
        request.method, request.url.path, await request.body()
    )
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    now = datetime.now(UTC)
    async with sessions() as session:
        stored = await idempotency.claim_key(session, tenant_id, key, fingerprint, now)
    if stored is not None:
        return Response(
            stored.body,
            status_code=stored.status,
            media_type=stored.content_type,
            headers={"Idempotent-Replayed": "true"},
        )
    token = _RUNNING_KEY.set(key)
    try:
        response = await _execute(operation)
    except BaseException:
        async with sessions() as session:
            await idempotency.release_key(session, tenant_id, key)
        raise
    finally:
        _RUNNING_KEY.reset(token)
    status_code = response.status_code or 200
    if status_code >= 500:
        async with sessions() as session:
            await idempotency.release_key(session, tenant_id, key)
        return response
    stored = idempotency.StoredResponse(
        status_code, response.content, response.media_type or "application/json"
    )
    async with sessions() as session:
        await idempotency.complete_key(session, tenant_id, key, stored)
    return response


async def _execute(operation: Operation) -> Response[bytes]:
    try:
        status, content = await operation()
    except errors.DomainError as error:
        return domain_problem(error)
    return Response(encode_json(content), status_code=status, media_type="application/json")
