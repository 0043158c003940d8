"""structlog configuration: JSON in production, console in development. Never log secrets."""

from __future__ import annotations

import functools
import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

SENSITIVE = ("password", "secret", "token", "authorization", "card", "cvc", "api_key", "signature")


@functools.lru_cache(maxsize=4096)
def _sensitive(key: str) -> bool:
    """Log keys are mostly the code's own few names: each is checked once, then looked up."""
    return any(word in key.lower() for word in SENSITIVE)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in [key for key in event if _sensitive(key)]:
        event[key] = "[redacted]"
    return event


def configure_logging(*, json: bool, level: int = logging.INFO) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
