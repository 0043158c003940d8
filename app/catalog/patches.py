"""Inputs of the catalog edit use cases: partial changes, where a field left UNSET keeps its
current value and None (for a nullable field) clears it."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeVar

from app.catalog.specs import BranchPriceInput, TierInput

T = TypeVar("T")


class Unset(enum.Enum):
    UNSET = "unset"


UNSET: Literal[Unset.UNSET] = Unset.UNSET
Maybe: TypeAlias = T | Literal[Unset.UNSET]


@dataclass(frozen=True, slots=True)
class BranchPatch:
    name: Maybe[str] = UNSET
    timezone: Maybe[str] = UNSET
    address: Maybe[str | None] = UNSET
    archived: Maybe[bool] = UNSET


@dataclass(frozen=True, slots=True)
class ResourcePatch:
    name: Maybe[str] = UNSET
    kind: Maybe[str] = UNSET
    capacity: Maybe[int] = UNSET
    commission_bps: Maybe[int | None] = UNSET
    branch_ids: Maybe[tuple[uuid.UUID, ...]] = UNSET
    archived: Maybe[bool] = UNSET


@dataclass(frozen=True, slots=True)
class ServicePatch:
    """Field names are ServiceSpec's: the patch is laid over the current service and the
    result is checked exactly as a new service would be."""

    name: Maybe[str] = UNSET
    policy: Maybe[str] = UNSET
    price_minor: Maybe[int] = UNSET
    currency: Maybe[str] = UNSET
    pricing: Maybe[str] = UNSET
    resource_ids: Maybe[tuple[uuid.UUID, ...]] = UNSET
    duration_minutes: Maybe[int | None] = UNSET
    slot_step_minutes: Maybe[int | None] = UNSET
    buffer_before_minutes: Maybe[int] = UNSET
    buffer_after_minutes: Maybe[int] = UNSET
    min_notice_minutes: Maybe[int] = UNSET
    max_advance_days: Maybe[int] = UNSET
    min_nights: Maybe[int | None] = UNSET
    max_nights: Maybe[int | None] = UNSET
    check_in_time: Maybe[str | None] = UNSET
    check_out_time: Maybe[str | None] = UNSET
    min_minutes: Maybe[int | None] = UNSET
    max_minutes: Maybe[int | None] = UNSET
    branch_prices: Maybe[tuple[BranchPriceInput, ...]] = UNSET
    commission_bps: Maybe[int | None] = UNSET
    commission_fixed_minor: Maybe[int | None] = UNSET
    tiers: Maybe[tuple[TierInput, ...]] = UNSET
    no_show_fee_bps: Maybe[int | None] = UNSET
    archived: Maybe[bool] = UNSET


@dataclass(frozen=True, slots=True)
class ProductPatch:
    name: Maybe[str] = UNSET
    price_minor: Maybe[int] = UNSET
    currency: Maybe[str] = UNSET
    archived: Maybe[bool] = UNSET
