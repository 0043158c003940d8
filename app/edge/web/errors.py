"""Errors of the booking site, in the DomainError tree (no HTTP codes here)."""

from __future__ import annotations

from app.errors import DomainError


class LinkExpired(DomainError):
    """A manage link of a booking that has ended: it no longer works (410 Gone)."""

    slug = "link_expired"
    title = "This booking has ended; its link no longer works"
