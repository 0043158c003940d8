"""HTTP shapes for catalog edits (PATCH bodies: a field left out keeps its value; null clears
a nullable one) and stock movements."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from app.catalog import patches
from app.catalog.schemas import BranchPriceIO, CancellationIO, Clock, Ids, MoneyIO, Short
from app.catalog.specs import BranchPriceInput, TierInput
from app.catalog.views import StockMovementView

T = TypeVar("T")
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
ArchivedFilter = Literal["false", "true", "all"]


def given(value: T | UnsetType) -> patches.Maybe[T]:
    return patches.UNSET if isinstance(value, UnsetType) else value


def given_ids(value: list[uuid.UUID] | UnsetType) -> patches.Maybe[tuple[uuid.UUID, ...]]:
    return patches.UNSET if isinstance(value, UnsetType) else tuple(value)


def archived_filter(value: ArchivedFilter) -> bool | None:
    """`?archived=`: false (active only, the default), true (archived only) or all."""
    return {"false": False, "true": True, "all": None}[value]


class BranchPatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short | UnsetType = UNSET
    timezone: Short | UnsetType = UNSET
    address: str | UnsetType | None = UNSET
    archived: bool | UnsetType = UNSET

    def patch(self) -> patches.BranchPatch:
        return patches.BranchPatch(
            given(self.name), given(self.timezone), given(self.address), given(self.archived)
        )


class ResourcePatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short | UnsetType = UNSET
    kind: Short | UnsetType = UNSET
    capacity: int | UnsetType = UNSET
    commission_bps: int | UnsetType | None = UNSET
    branch_ids: Ids | UnsetType = UNSET
    archived: bool | UnsetType = UNSET

    def patch(self) -> patches.ResourcePatch:
        return patches.ResourcePatch(
            name=given(self.name),
            kind=given(self.kind),
            capacity=given(self.capacity),
            commission_bps=given(self.commission_bps),
            branch_ids=given_ids(self.branch_ids),
            archived=given(self.archived),
        )


class ServicePatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short | UnsetType = UNSET
    policy: Short | UnsetType = UNSET
    price: MoneyIO | UnsetType = UNSET
    pricing: Short | UnsetType = UNSET
    resource_ids: Ids | UnsetType = UNSET
    duration_minutes: int | UnsetType | None = UNSET
    slot_step_minutes: int | UnsetType | None = UNSET
    buffer_before_minutes: int | UnsetType = UNSET
    buffer_after_minutes: int | UnsetType = UNSET
    min_notice_minutes: int | UnsetType = UNSET
    max_advance_days: int | UnsetType = UNSET
    min_nights: int | UnsetType | None = UNSET
    max_nights: int | UnsetType | None = UNSET
    check_in_time: Clock | UnsetType | None = UNSET
    check_out_time: Clock | UnsetType | None = UNSET
    min_minutes: int | UnsetType | None = UNSET
    max_minutes: int | UnsetType | None = UNSET
    branch_prices: Annotated[list[BranchPriceIO], msgspec.Meta(max_length=200)] | UnsetType = UNSET
    cancellation_policy: CancellationIO | UnsetType | None = UNSET
    commission_bps: int | UnsetType | None = UNSET
    commission_fixed_minor: int | UnsetType | None = UNSET
    archived: bool | UnsetType = UNSET

    def patch(self) -> patches.ServicePatch:
        price, policy, prices = self.price, self.cancellation_policy, self.branch_prices
        return patches.ServicePatch(
            name=given(self.name),
            policy=given(self.policy),
            price_minor=patches.UNSET if isinstance(price, UnsetType) else price.amount_minor,
            currency=patches.UNSET if isinstance(price, UnsetType) else price.currency,
            pricing=given(self.pricing),
            resource_ids=given_ids(self.resource_ids),
            duration_minutes=given(self.duration_minutes),
            slot_step_minutes=given(self.slot_step_minutes),
            buffer_before_minutes=given(self.buffer_before_minutes),
            buffer_after_minutes=given(self.buffer_after_minutes),
            min_notice_minutes=given(self.min_notice_minutes),
            max_advance_days=given(self.max_advance_days),
            min_nights=given(self.min_nights),
            max_nights=given(self.max_nights),
            check_in_time=given(self.check_in_time),
            check_out_time=given(self.check_out_time),
            min_minutes=given(self.min_minutes),
            max_minutes=given(self.max_minutes),
            branch_prices=patches.UNSET
            if isinstance(prices, UnsetType)
            else tuple(BranchPriceInput(p.branch_id, p.amount_minor, p.pricing) for p in prices),
            commission_bps=given(self.commission_bps),
            commission_fixed_minor=given(self.commission_fixed_minor),
            tiers=patches.UNSET
            if isinstance(policy, UnsetType)
            else tuple(TierInput(t.hours_before, t.refund_bps) for t in policy.tiers)
            if policy
            else (),
            no_show_fee_bps=patches.UNSET
            if isinstance(policy, UnsetType)
            else policy.no_show_fee_bps
            if policy
            else None,
            archived=given(self.archived),
        )


class ProductPatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short | UnsetType = UNSET
    price: MoneyIO | UnsetType = UNSET
    archived: bool | UnsetType = UNSET

    def patch(self) -> patches.ProductPatch:
        price = self.price
        return patches.ProductPatch(
            name=given(self.name),
            price_minor=patches.UNSET if isinstance(price, UnsetType) else price.amount_minor,
            currency=patches.UNSET if isinstance(price, UnsetType) else price.currency,
            archived=given(self.archived),
        )


class StockMovementIn(msgspec.Struct, forbid_unknown_fields=True):
    branch_id: uuid.UUID
    delta: int
    reason: Reason


class StockMovementOut(msgspec.Struct):
    id: uuid.UUID
    product_id: uuid.UUID
    branch_id: uuid.UUID
    delta: int
    quantity_after: int
    kind: str
    reason: str
    actor_kind: str
    actor_id: uuid.UUID | None
    booking_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, view: StockMovementView) -> StockMovementOut:
        return cls(
            view.id,
            view.product_id,
            view.branch_id,
            view.delta,
            view.quantity_after,
            view.kind,
            view.reason,
            view.actor_kind,
            view.actor_id,
            view.booking_id,
            view.created_at,
        )
