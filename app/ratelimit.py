"""Fixed-window rate limit per client address for the public routes, kept in Redis.

Redis may vanish at any moment; PostgreSQL is the truth. So when Redis is down the limiter
allows the request (and logs) rather than taking the public booking page down with it.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.errors import RateLimited

log = structlog.get_logger()

WINDOW_SECONDS = 60


async def hit(
    redis: Redis, key: str, limit: int, now: float, window: int = WINDOW_SECONDS
) -> int | None:
    """Count one request; None when allowed, else seconds until the window resets."""
    bucket = int(now // window)
    full_key = f"{key}:{bucket}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(full_key)
            pipe.expire(full_key, window + 1)
            count, _ = await pipe.execute()
    except (RedisError, OSError) as error:
        log.warning("ratelimit.redis_unavailable", error_type=type(error).__name__)
        return None
    if int(count) <= limit:
        return None
    return max(1, int((bucket + 1) * window - now + 0.999))


async def public_rate_limit(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard for public routes: raises RateLimited (429 with Retry-After) past the limit."""
    state = connection.app.state
    settings = state.settings
    address = connection.client.host if connection.client else "unknown"
    key = f"{settings.redis_namespace}:ratelimit:public:{address}"
    retry_after = await hit(state.redis, key, settings.public_rate_limit_per_minute, time.time())
    if retry_after is not None:
        raise RateLimited(retry_after, "Too many requests from this address; retry later")
