"""What a handler raises to tell the relay how a delivery attempt failed."""

from __future__ import annotations

from app.errors import InvalidState, NotFound


class RetryableError(Exception):
    """The effect may succeed later (timeout, 5xx, Redis down): retry with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help (4xx, invalid payload): the row goes dead at once."""


class OutboxEntryNotFound(NotFound):
    slug = "outbox_entry_not_found"
    title = "No such outbox entry"


class OutboxEntryDelivered(InvalidState):
    slug = "outbox_entry_delivered"
    title = "This outbox entry was already delivered"


class OutboxChannelNotFound(NotFound):
    slug = "outbox_channel_not_found"
    title = "This outbox entry has no such channel delivery"


class OutboxChannelDelivered(InvalidState):
    slug = "outbox_channel_delivered"
    title = "This channel already delivered this outbox entry"
