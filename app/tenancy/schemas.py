"""HTTP shapes for tenancy."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from app.tenancy import service

Short = Annotated[str, msgspec.Meta(max_length=300)]


class SignUpIn(msgspec.Struct, forbid_unknown_fields=True):
    business_name: Short
    slug: Short
    email: Short
    password: Short
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
    timezone: Short


class SignUpOut(msgspec.Struct):
    tenant_id: uuid.UUID
    slug: str
    access_token: str


class TokenIn(msgspec.Struct):
    email: Short
    password: Short
    tenant: Short | None = None


class TokenOut(msgspec.Struct):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = 0


class MeOut(msgspec.Struct):
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    email: str


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Short
    password: Short
    role: Literal["admin", "staff"]
    resource_id: uuid.UUID | None = None


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: str
    resource_id: uuid.UUID | None = None
    active: bool = True


class UserPatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """Fields left out keep their value; `resource_id: null` unlinks the resource."""

    email: Short | UnsetType = UNSET
    role: Literal["admin", "staff"] | UnsetType = UNSET
    resource_id: uuid.UUID | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET

    def patch(self) -> service.UserPatch:
        return service.UserPatch(
            email=service.UNSET if isinstance(self.email, UnsetType) else self.email,
            role=service.UNSET if isinstance(self.role, UnsetType) else self.role,
            resource_id=service.UNSET
            if isinstance(self.resource_id, UnsetType)
            else self.resource_id,
            active=service.UNSET if isinstance(self.active, UnsetType) else self.active,
        )
