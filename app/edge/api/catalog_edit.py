"""Catalog edit routes (owners and admins): PATCH branches, resources, services, products;
stock movements. Mounted by app.edge.api.catalog.router()."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get, patch, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service
from app.catalog.edit_schemas import (
    BranchPatchIn,
    ProductPatchIn,
    ResourcePatchIn,
    ServicePatchIn,
    StockMovementIn,
    StockMovementOut,
)
from app.catalog.schemas import BranchOut, ProductOut, ResourceOut, ServiceOut
from app.edge.http import idempotent, manager_only, principal

AnyRequest = Request[Any, Any, Any]
Limit = Annotated[int, Parameter(ge=1, le=500)]


@patch("/branches/{branch_id:uuid}", guards=[manager_only])
async def update_branch(
    request: AnyRequest, branch_id: uuid.UUID, data: BranchPatchIn, session: AsyncSession
) -> BranchOut:
    branch = await service.update_branch(session, principal(request), branch_id, data.patch())
    return BranchOut.of(branch)


@patch("/resources/{resource_id:uuid}", guards=[manager_only])
async def update_resource(
    request: AnyRequest, resource_id: uuid.UUID, data: ResourcePatchIn, session: AsyncSession
) -> ResourceOut:
    resource = await service.update_resource(
        session, principal(request), resource_id, data.patch(), datetime.now(UTC)
    )
    return ResourceOut.of(resource)


@patch("/services/{service_id:uuid}", guards=[manager_only])
async def update_service(
    request: AnyRequest, service_id: uuid.UUID, data: ServicePatchIn, session: AsyncSession
) -> ServiceOut:
    updated = await service.update_service(session, principal(request), service_id, data.patch())
    return ServiceOut.of(updated)


@patch("/products/{product_id:uuid}", guards=[manager_only])
async def update_product(
    request: AnyRequest, product_id: uuid.UUID, data: ProductPatchIn, session: AsyncSession
) -> ProductOut:
    product = await service.update_product(session, principal(request), product_id, data.patch())
    return ProductOut.of(product)


@post("/products/{product_id:uuid}/stock-movements", guards=[manager_only])
async def record_stock_movement(
    request: AnyRequest, product_id: uuid.UUID, data: StockMovementIn, session: AsyncSession
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        movement = await service.record_stock_movement(
            session,
            actor,
            product_id,
            branch_id=data.branch_id,
            delta=data.delta,
            reason=data.reason,
            now=datetime.now(UTC),
        )
        return 201, StockMovementOut.of(movement)

    return await idempotent(request, actor.tenant_id, run)


@get("/products/{product_id:uuid}/stock-movements")
async def list_stock_movements(
    request: AnyRequest,
    product_id: uuid.UUID,
    session: AsyncSession,
    branch_id: uuid.UUID | None = None,
    limit: Limit = 200,
) -> list[StockMovementOut]:
    movements = await service.list_stock_movements(
        session, principal(request).tenant_id, product_id, branch_id=branch_id, limit=limit
    )
    return [StockMovementOut.of(movement) for movement in movements]


HANDLERS = [
    update_branch,
    update_resource,
    update_service,
    update_product,
    record_stock_movement,
    list_stock_movements,
]
