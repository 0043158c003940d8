"""Catalog errors: archived things asked for as if they were still offered, and stock that a
movement would take below zero."""

from __future__ import annotations

import uuid
from typing import Any

from app.errors import Conflict, ValidationFailed


class Archived(ValidationFailed):
    """A request names an archived catalog item where only an active one will do. The item
    stays readable by id; it is just no longer offered."""

    slug = "archived"
    title = "This item is archived"
    entity = "item"

    def __init__(self, field: str, item_id: uuid.UUID, **context: Any) -> None:
        message = f"{self.entity} {item_id} is archived"
        super().__init__(
            f"{field}: {message}",
            errors=[{"field": field, "message": message}],
            entity=self.entity,
            id=str(item_id),
            **context,
        )


class ServiceArchived(Archived):
    slug = "service_archived"
    title = "This service is archived and no longer offered"
    entity = "service"


class BranchArchived(Archived):
    slug = "branch_archived"
    title = "This branch is archived and takes no bookings"
    entity = "branch"


class ResourceArchived(Archived):
    slug = "resource_archived"
    title = "This resource is archived and takes no bookings"
    entity = "resource"


class ProductArchived(Archived):
    slug = "product_archived"
    title = "This product is archived and no longer sold"
    entity = "product"


class InsufficientStock(Conflict):
    slug = "insufficient_stock"
    title = "The movement would take the stock below zero"


class CapacityBelowBookings(Conflict):
    slug = "capacity_below_bookings"
    title = "Upcoming bookings already need more capacity than this"
