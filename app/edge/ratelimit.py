"""Fixed-window rate limits kept in Redis: per client address on the public routes, and per
address and per account on sign-up and login (each attempt there costs an argon2id hash).

Redis may vanish at any moment; PostgreSQL is the truth. So when Redis is down a limiter
allows the request (and logs) rather than taking sign-in or the public booking page down
with it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.errors import RateLimited

log = structlog.get_logger()

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `limit` counted events per fixed window of `window` seconds."""

    name: str
    limit: int
    window: int = WINDOW_SECONDS


# Guesses at one account's password, wherever they come from. A success is not a guess.
LOGIN_FAILURES_PER_ACCOUNT = Limit("login-failures:account", 10, 15 * 60)
# Guesses from one address across accounts (password spraying); generous for a shared NAT.
LOGIN_FAILURES_PER_ADDRESS = Limit("login-failures:address", 50, 15 * 60)
# Sign-ups naming one email: retries after a taken slug are fine, a flood is not.
SIGNUPS_PER_ACCOUNT = Limit("signups:account", 10, 60 * 60)


def _retry_after(bucket: int, window: int, now: float) -> int:
    return max(1, int((bucket + 1) * window - now + 0.999))


@dataclass(frozen=True, slots=True)
class Counted:
    """Counters one attempt incremented, so the ones that count only failures can be given
    back when it succeeds (counting first, not after, bounds what concurrent attempts get)."""

    redis: Redis
    refundable: tuple[tuple[str, int], ...] = ()

    async def refund(self) -> None:
        if not self.refundable:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key, ttl in self.refundable:
                    pipe.decr(key)
                    pipe.expire(key, ttl)
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.warning("ratelimit.redis_unavailable", error_type=type(error).__name__)


async def take(
    redis: Redis,
    namespace: str,
    hits: Sequence[tuple[Limit, str]],
    now: float,
    *,
    refundable: Sequence[Limit] = (),
    detail: str = "Too many attempts; retry later",
) -> Counted:
    """Count one attempt against every (limit, identity) in one round trip; raise
    RateLimited (with the longest wait) when any is exceeded. Fails open without Redis."""
    keys: list[tuple[Limit, str, int]] = []
    try:
        async with redis.pipeline(transaction=True) as pipe:
            for limit, identity in hits:
                bucket = int(now // limit.window)
                key = f"{namespace}:ratelimit:{limit.name}:{identity}:{bucket}"
                keys.append((limit, key, bucket))
                pipe.incr(key)
                pipe.expire(key, limit.window + 1)
            results = await pipe.execute()
    except (RedisError, OSError) as error:
        log.warning("ratelimit.redis_unavailable", error_type=type(error).__name__)
        return Counted(redis)
    exceeded = [
        (limit, bucket)
        for (limit, _, bucket), count in zip(keys, results[::2], strict=True)
        if int(count) > limit.limit
    ]
    if exceeded:
        log.info("ratelimit.exceeded", limits=[limit.name for limit, _ in exceeded])
        wait = max(_retry_after(bucket, limit.window, now) for limit, bucket in exceeded)
        raise RateLimited(wait, detail)
    return Counted(
        redis, tuple((key, limit.window + 1) for limit, key, _ in keys if limit in refundable)
    )


def account_identity(email: str) -> str:
    """A stable, bounded Redis key part for an email, without the email in it."""
    normalised = email.strip().casefold().encode()
    return hashlib.sha256(normalised).hexdigest()[:32]


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else "unknown"


def _per_minute(name: str, state: State) -> Limit:
    return Limit(name, state.settings.public_rate_limit_per_minute)


@asynccontextmanager
async def _counting(
    state: State,
    hits: Sequence[tuple[Limit, str]],
    refundable: Sequence[Limit],
    counts: Callable[[BaseException | None], bool],
) -> AsyncIterator[None]:
    """Count an attempt before it runs (so concurrent attempts cannot overrun a limit), then
    give the `refundable` counters back when its outcome (None for success) does not count."""
    counted = await take(
        state.redis, state.settings.redis_namespace, hits, time.time(), refundable=refundable
    )
    try:
        yield
    except BaseException as error:
        if not counts(error):
            await counted.refund()
        raise
    if not counts(None):
        await counted.refund()


def counting_signup(
    state: State, address: str, email: str, invalid: type[BaseException]
) -> AbstractAsyncContextManager[None]:
    """Around one sign-up: every attempt counts against the address's per-minute limit, and
    against the email's limit unless refused as `invalid` (that is before any hashing, so a
    customer fixing a typo is not locked out)."""
    per_account = SIGNUPS_PER_ACCOUNT
    return _counting(
        state,
        [(_per_minute("signups:address", state), address), (per_account, account_identity(email))],
        refundable=(per_account,),
        counts=lambda outcome: not isinstance(outcome, invalid),
    )


def counting_login(
    state: State, address: str, email: str, failure: type[BaseException]
) -> AbstractAsyncContextManager[None]:
    """Around one login: every attempt counts against the address's per-minute limit; only
    attempts ending in `failure` count against the failure limits per account and per
    address. Raises RateLimited before any password is hashed."""
    return _counting(
        state,
        [
            (_per_minute("logins:address", state), address),
            (LOGIN_FAILURES_PER_ACCOUNT, account_identity(email)),
            (LOGIN_FAILURES_PER_ADDRESS, address),
        ],
        refundable=(LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS),
        counts=lambda outcome: isinstance(outcome, failure),
    )


async def public_rate_limit(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard for public routes: raises RateLimited (429 with Retry-After) past the limit."""
    state = connection.app.state
    await take(
        state.redis,
        state.settings.redis_namespace,
        [(_per_minute("public", state), client_address(connection))],
        time.time(),
        detail="Too many requests from this address; retry later",
    )
