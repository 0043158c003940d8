"""Product pages (owners and admins): the list with stock per branch, a new product with its
opening stock, editing and archiving, and stock movements — add or take stock with a reason,
and every movement listed (opening stock, adjustments, bookings' deductions and restocks).
Each form calls the use case its JSON route calls (create_product, update_product,
record_stock_movement, list_stock_movements)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.catalog import service
from app.catalog.errors import InsufficientStock
from app.edge.web.dashboard.pages_catalog import archived_filter
from app.edge.web.dashboard.pages_catalog_forms import (
    Form,
    actor,
    as_uuid,
    field_errors,
    indexed,
    money_text,
)
from app.edge.web.dashboard.queries import get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, now
from app.presentation.i18n import N_

PRICE = N_("Enter a price of zero or more, like 350.00.")
QUANTITY = N_("Enter a whole number of 0 or more.")
MESSAGES = {
    "name": N_("Enter a name of 1 to 200 characters."),
    "price": PRICE,
    "stock": N_("Choose active branches, each once."),
}
MOVEMENT_MESSAGES = {
    "branch_id": N_("Choose a branch."),
    "delta": N_("Enter a whole number other than 0: positive adds stock, negative takes it."),
    "reason": N_("Enter a reason of 1 to 500 characters."),
}
MOVEMENT_KINDS = {
    "opening": N_("Opening stock"),
    "adjustment": N_("Adjustment"),
    "booking": N_("Sold with a booking"),
    "restock": N_("Returned from a booking"),
}


@get("/catalog/products", include_in_schema=False)
async def products(request: AnyRequest, session: AsyncSession) -> Template:
    return await _products_page(request, session)


async def _products_page(
    request: AnyRequest,
    session: AsyncSession,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    shown = request.query_params.get("archived")
    found = await service.list_products(session, tenant_id, archived=archived_filter(shown))
    branches = await service.list_branches(session, tenant_id, archived=None)
    return page(
        request,
        "dashboard/catalog/products.html",
        status=status,
        business=business,
        products=found,
        branches=[b for b in branches if b.active],
        branch_names={b.id: b.name for b in branches},
        shown=shown,
        values=values or {},
        errors=problems or {},
    )


def _rename(branches: list[uuid.UUID]) -> Any:
    def rename(name: str) -> str | None:
        if name.startswith("price."):
            return "price"
        found = indexed(name)
        if found and found[0] == "stock" and found[1] < len(branches):
            return f"stock-{branches[found[1]]}"
        return name

    return rename


@post("/catalog/products", include_in_schema=False)
async def create_product(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    principal = actor(request)
    business = await get_business(session, principal.tenant_id)
    branches = await service.list_branches(session, principal.tenant_id)
    form = Form(await request.form())
    name = form.text("name")
    price = form.money("price", business.currency, PRICE)
    if not form.values["price"]:
        form.errors["price"] = PRICE
    stock, stocked = [], []
    for branch in branches:
        quantity = form.whole(f"stock-{branch.id}", QUANTITY)
        if quantity is not None:
            stock.append(service.StockInput(branch.id, quantity))
            stocked.append(branch.id)
    problems = dict(form.errors)
    if not problems:
        try:
            created = await service.create_product(
                session,
                principal,
                name=name,
                price_minor=price or 0,
                currency=business.currency,
                stock=stock,
                now=now(),
            )
        except errors.ValidationFailed as error:
            messages = MESSAGES | {f"stock-{b}": QUANTITY for b in stocked}
            problems = field_errors(error, messages, _rename(stocked))
        else:
            return Redirect(f"/dashboard/catalog/products/{created.id}?saved=1", status_code=303)
    return await _products_page(request, session, values=form.values, problems=problems, status=422)


async def _product_page(
    request: AnyRequest,
    session: AsyncSession,
    product_id: uuid.UUID,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    movement: dict[str, Any] | None = None,
    movement_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    product = await service.get_product(session, tenant_id, product_id)
    branches = await service.list_branches(session, tenant_id, archived=None)
    movements = await service.list_stock_movements(session, tenant_id, product_id, limit=200)
    price = money_text(product.price.amount_minor, product.price.currency)
    current = {"name": product.name, "price": price}
    return page(
        request,
        "dashboard/catalog/product.html",
        status=status,
        business=business,
        product=product,
        branches=[b for b in branches if b.active],
        branch_names={b.id: b.name for b in branches},
        movements=movements,
        kinds=MOVEMENT_KINDS,
        values=values or current,
        errors=problems or {},
        movement=movement or {},
        movement_errors=movement_errors or {},
        saved=request.query_params.get("saved"),
    )


@get("/catalog/products/{product_id:uuid}", include_in_schema=False)
async def product(request: AnyRequest, session: AsyncSession, product_id: uuid.UUID) -> Template:
    return await _product_page(request, session, product_id)


@post("/catalog/products/{product_id:uuid}", include_in_schema=False)
async def update_product(
    request: AnyRequest, session: AsyncSession, product_id: uuid.UUID
) -> Response[Any]:
    principal = actor(request)
    business = await get_business(session, principal.tenant_id)
    form = Form(await request.form())
    name = form.text("name")
    price = form.money("price", business.currency, PRICE)
    if not form.values["price"]:
        form.errors["price"] = PRICE
    problems = dict(form.errors)
    if not problems:
        patch = service.ProductPatch(name=name, price_minor=price or 0)
        try:
            await service.update_product(session, principal, product_id, patch)
        except errors.ValidationFailed as error:
            problems = field_errors(error, MESSAGES, _rename([]))
        else:
            return Redirect(f"/dashboard/catalog/products/{product_id}?saved=1", status_code=303)
    return await _product_page(
        request, session, product_id, values=form.values, problems=problems, status=422
    )


@post("/catalog/products/{product_id:uuid}/stock", include_in_schema=False)
async def record_stock_movement(
    request: AnyRequest, session: AsyncSession, product_id: uuid.UUID
) -> Response[Any]:
    form = Form(await request.form())
    branch_id = as_uuid(form.text("branch_id"))
    delta = form.whole("delta", MOVEMENT_MESSAGES["delta"])
    reason = form.text("reason", limit=600)
    problems = dict(form.errors)
    status = 422
    if branch_id is None:
        problems["branch_id"] = MOVEMENT_MESSAGES["branch_id"]
    if not form.values["delta"]:
        problems["delta"] = MOVEMENT_MESSAGES["delta"]
    if not problems and branch_id is not None and delta is not None:
        try:
            await service.record_stock_movement(
                session,
                actor(request),
                product_id,
                branch_id=branch_id,
                delta=delta,
                reason=reason,
                now=now(),
            )
        except errors.ValidationFailed as error:
            problems = field_errors(error, MOVEMENT_MESSAGES)
        except InsufficientStock:
            problems = {"delta": N_("There is not that much in stock to take.")}
            status = 409
        else:
            return Redirect(
                f"/dashboard/catalog/products/{product_id}?saved=stock#movements", status_code=303
            )
    return await _product_page(
        request,
        session,
        product_id,
        movement=form.values,
        movement_errors=problems,
        status=status,
    )


@post("/catalog/products/{product_id:uuid}/archive", include_in_schema=False)
async def archive_product(
    request: AnyRequest, session: AsyncSession, product_id: uuid.UUID
) -> Response[Any]:
    archived = Form(await request.form()).flag("archived")
    patch = service.ProductPatch(archived=archived)
    await service.update_product(session, actor(request), product_id, patch)
    return Redirect(f"/dashboard/catalog/products/{product_id}?saved=1", status_code=303)
