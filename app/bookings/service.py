"""Booking use cases, one import away. Each owns its transaction; see the modules for detail."""

from __future__ import annotations

from app.bookings.lifecycle import (
    NO_SHOW_GRACE,
    cancel_booking,
    check_in_booking,
    complete_booking,
    expire_holds,
    mark_due_no_shows,
    mark_no_show,
)
from app.bookings.placing import HOLD, Placed, place_booking
from app.bookings.queries import BookingView, LineView, get_booking, list_bookings
from app.bookings.rescheduling import reschedule_booking
from app.bookings.rules import BookingRequest, Customer, LineItem, Recurrence

__all__ = [
    "HOLD",
    "NO_SHOW_GRACE",
    "BookingRequest",
    "BookingView",
    "Customer",
    "LineItem",
    "LineView",
    "Placed",
    "Recurrence",
    "cancel_booking",
    "check_in_booking",
    "complete_booking",
    "expire_holds",
    "get_booking",
    "list_bookings",
    "mark_due_no_shows",
    "mark_no_show",
    "place_booking",
    "reschedule_booking",
]
