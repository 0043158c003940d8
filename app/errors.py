"""The domain error tree. Errors carry context, never HTTP status codes (see app/edge/http.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    slug = "domain_error"
    title = "The request could not be completed"

    def __init__(self, detail: str | None = None, **context: Any) -> None:
        self.detail = detail or self.title
        self.context = context
        super().__init__(self.detail)


class ValidationFailed(DomainError):
    slug = "validation_error"
    title = "The request is not valid"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(detail, **context)
        self.errors = errors or []


class NotFound(DomainError):
    slug = "not_found"
    title = "Not found"


class Conflict(DomainError):
    slug = "conflict"
    title = "The request conflicts with the current state"


class InvalidState(Conflict):
    slug = "invalid_state"
    title = "The operation is not allowed in the current state"


class Unauthenticated(DomainError):
    slug = "unauthenticated"
    title = "Authentication required"


class InvalidCredentials(Unauthenticated):
    slug = "invalid_credentials"
    title = "Invalid email or password"


class Forbidden(DomainError):
    slug = "forbidden"
    title = "You are not allowed to do this"


class Contention(Conflict):
    """The transaction kept losing races for the same rows (deadlock, serialization failure,
    lock timeout) and was rolled back each time: nothing changed; retry."""

    slug = "contention"
    title = "Other requests are changing the same records right now; retry shortly"


class IdempotencyKeyReused(DomainError):
    slug = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyKeyInProgress(Conflict):
    slug = "idempotency_key_in_progress"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyOutcomeUnknown(Conflict):
    slug = "idempotency_outcome_unknown"
    title = (
        "A request with this Idempotency-Key was carried out but its response was lost; "
        "read the resource instead of retrying"
    )


class RateLimited(DomainError):
    slug = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class DependencyUnavailable(DomainError):
    slug = "dependency_unavailable"
    title = "A dependency is unavailable"


class RedeliverLater(DependencyUnavailable):
    """A provider's event could not be applied now (it kept losing races, or it waits on
    something still pending): nothing of it was stored; the provider delivers it again."""

    slug = "redeliver_later"
    title = "The event could not be applied now; deliver it again later"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **context: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **context)
        self.retry_after = retry_after
