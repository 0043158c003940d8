"""Booking errors: each a DomainError subclass with its own stable slug."""

from __future__ import annotations

from app.errors import Conflict, ValidationFailed


class SlotUnavailable(Conflict):
    slug = "slot_unavailable"
    title = "This time is no longer available"


class RecurrenceConflict(SlotUnavailable):
    """Some occurrences of a recurring booking are taken; `dates` names them (local dates)."""

    title = "Some dates of this recurring booking are not available"


class OutOfStock(Conflict):
    slug = "out_of_stock"
    title = "A product is out of stock at this branch"


class BookingBusy(Conflict):
    slug = "booking_busy"
    title = "Another request is changing this booking; retry"


class ProviderUnavailable(ValidationFailed):
    slug = "provider_unavailable"
    title = "This payment provider is not available"
