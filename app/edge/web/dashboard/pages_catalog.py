"""Catalog pages (owners and admins): branches and resources — list, create, edit, archive —
each calling the catalog use case its JSON route calls (create_branch, update_branch,
create_resource, update_resource). Hours and time off: pages_catalog_hours; services:
pages_catalog_services; products: pages_catalog_products."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.catalog import service
from app.catalog.errors import CapacityBelowBookings
from app.catalog.models import RESOURCE_KINDS
from app.edge.web.dashboard.pages_catalog_forms import (
    KIND_LABELS,
    Form,
    actor,
    field_errors,
    percent_text,
)
from app.edge.web.dashboard.queries import get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, now
from app.presentation.i18n import N_

ARCHIVED = {"true": True, "all": None}
BRANCH_MESSAGES = {
    "name": N_("Enter a name of 1 to 200 characters."),
    "timezone": N_("Enter a timezone such as Africa/Cairo or America/Denver."),
    "address": N_("Enter an address of at most 500 characters, or leave it empty."),
}
RESOURCE_MESSAGES = {
    "name": N_("Enter a name of 1 to 200 characters."),
    "kind": N_("Choose what kind of resource this is."),
    "capacity": N_("Enter a capacity from 1 to 10,000."),
    "commission_bps": N_("Enter a commission from 0 to 100 percent, or leave it empty."),
    "branch_ids": N_("Choose at least one active branch."),
}


def archived_filter(archived: str | None) -> bool | None:
    return ARCHIVED.get(archived or "", False)


# -- branches ----------------------------------------------------------------------------


async def _branches_page(
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
    branches = await service.list_branches(session, tenant_id, archived=archived_filter(shown))
    return page(
        request,
        "dashboard/catalog/branches.html",
        status=status,
        business=business,
        branches=branches,
        shown=shown,
        values=values or {"timezone": business.tz.key},
        errors=problems or {},
    )


@get("/catalog", include_in_schema=False)
async def catalog_home() -> Redirect:
    return Redirect("/dashboard/catalog/resources", status_code=303)


@get("/catalog/branches", include_in_schema=False)
async def branches(request: AnyRequest, session: AsyncSession) -> Template:
    return await _branches_page(request, session)


def _branch_form(form: Form) -> tuple[str, str, str | None]:
    return form.text("name"), form.text("timezone"), form.text("address") or None


@post("/catalog/branches", include_in_schema=False)
async def create_branch(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    form = Form(await request.form())
    name, timezone, address = _branch_form(form)
    try:
        await service.create_branch(
            session, actor(request), name=name, timezone=timezone, address=address
        )
    except errors.ValidationFailed as error:
        problems = field_errors(error, BRANCH_MESSAGES)
        return await _branches_page(
            request, session, values=form.values, problems=problems, status=422
        )
    return Redirect("/dashboard/catalog/branches?saved=1", status_code=303)


async def _branch_page(
    request: AnyRequest,
    session: AsyncSession,
    branch_id: uuid.UUID,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    branch = await service.get_branch(session, tenant_id, branch_id)
    current = {"name": branch.name, "timezone": branch.timezone, "address": branch.address or ""}
    return page(
        request,
        "dashboard/catalog/branch.html",
        status=status,
        business=business,
        branch=branch,
        values=values or current,
        errors=problems or {},
        saved=request.query_params.get("saved") == "1",
    )


@get("/catalog/branches/{branch_id:uuid}", include_in_schema=False)
async def branch(request: AnyRequest, session: AsyncSession, branch_id: uuid.UUID) -> Template:
    return await _branch_page(request, session, branch_id)


@post("/catalog/branches/{branch_id:uuid}", include_in_schema=False)
async def update_branch(
    request: AnyRequest, session: AsyncSession, branch_id: uuid.UUID
) -> Response[Any]:
    form = Form(await request.form())
    name, timezone, address = _branch_form(form)
    patch = service.BranchPatch(name=name, timezone=timezone, address=address)
    try:
        await service.update_branch(session, actor(request), branch_id, patch)
    except errors.ValidationFailed as error:
        problems = field_errors(error, BRANCH_MESSAGES)
        return await _branch_page(
            request, session, branch_id, values=form.values, problems=problems, status=422
        )
    return Redirect(f"/dashboard/catalog/branches/{branch_id}?saved=1", status_code=303)


@post("/catalog/branches/{branch_id:uuid}/archive", include_in_schema=False)
async def archive_branch(
    request: AnyRequest, session: AsyncSession, branch_id: uuid.UUID
) -> Response[Any]:
    archived = Form(await request.form()).flag("archived")
    patch = service.BranchPatch(archived=archived)
    await service.update_branch(session, actor(request), branch_id, patch)
    return Redirect(f"/dashboard/catalog/branches/{branch_id}?saved=1", status_code=303)


# -- resources ---------------------------------------------------------------------------


@get("/catalog/resources", include_in_schema=False)
async def resources(request: AnyRequest, session: AsyncSession) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    shown = request.query_params.get("archived")
    found = await service.list_resources(session, tenant_id, archived=archived_filter(shown))
    all_branches = await service.list_branches(session, tenant_id, archived=None)
    return page(
        request,
        "dashboard/catalog/resources.html",
        business=business,
        resources=found,
        branch_names={b.id: b.name for b in all_branches},
        kinds=KIND_LABELS,
        shown=shown,
        percent=percent_text,
    )


async def _resource_page(
    request: AnyRequest,
    session: AsyncSession,
    resource_id: uuid.UUID | None,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    branches = await service.list_branches(session, tenant_id, archived=None)
    resource = None
    current: dict[str, Any] = {"kind": "staff", "capacity": "1", "branch_ids": []}
    if len([b for b in branches if b.active]) == 1:
        current["branch_ids"] = [str(b.id) for b in branches if b.active]
    if resource_id is not None:
        resource = (await service.get_resource(session, tenant_id, resource_id)).resource
        current = {
            "name": resource.name,
            "kind": resource.kind,
            "capacity": str(resource.capacity),
            "commission_bps": percent_text(resource.commission_bps),
            "branch_ids": [str(b) for b in resource.branch_ids],
        }
    linked = set(current["branch_ids"]) if resource else set()
    return page(
        request,
        "dashboard/catalog/resource.html",
        status=status,
        business=business,
        resource=resource,
        branches=[b for b in branches if b.active or str(b.id) in linked],
        kinds=[(kind, KIND_LABELS[kind]) for kind in RESOURCE_KINDS],
        values=values or current,
        errors=problems or {},
        saved=request.query_params.get("saved") == "1",
    )


@get("/catalog/resources/new", include_in_schema=False)
async def new_resource(request: AnyRequest, session: AsyncSession) -> Template:
    return await _resource_page(request, session, None)


def _resource_form(form: Form) -> tuple[str, str, int | None, int | None, list[uuid.UUID]]:
    name, kind = form.text("name"), form.text("kind")
    capacity = form.whole("capacity", RESOURCE_MESSAGES["capacity"])
    if not form.values["capacity"]:
        form.errors["capacity"] = RESOURCE_MESSAGES["capacity"]
    commission = form.percent("commission_bps", RESOURCE_MESSAGES["commission_bps"])
    chosen = form.texts("branch_ids")
    form.values["branch_ids"] = chosen
    branch_ids = []
    for text in chosen:
        try:
            branch_ids.append(uuid.UUID(text))
        except ValueError:
            form.errors["branch_ids"] = RESOURCE_MESSAGES["branch_ids"]
    return name, kind, capacity, commission, branch_ids


@post("/catalog/resources/new", include_in_schema=False)
async def create_resource(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    form = Form(await request.form())
    name, kind, capacity, commission, branch_ids = _resource_form(form)
    problems = dict(form.errors)
    if not problems:
        try:
            created = await service.create_resource(
                session,
                actor(request),
                name=name,
                kind=kind,
                capacity=capacity or 0,
                branch_ids=branch_ids,
                commission_bps=commission,
            )
        except errors.ValidationFailed as error:
            problems = field_errors(error, RESOURCE_MESSAGES)
        else:
            return Redirect(f"/dashboard/catalog/resources/{created.id}/hours", status_code=303)
    return await _resource_page(
        request, session, None, values=form.values, problems=problems, status=422
    )


@get("/catalog/resources/{resource_id:uuid}", include_in_schema=False)
async def resource(request: AnyRequest, session: AsyncSession, resource_id: uuid.UUID) -> Template:
    return await _resource_page(request, session, resource_id)


@post("/catalog/resources/{resource_id:uuid}", include_in_schema=False)
async def update_resource(
    request: AnyRequest, session: AsyncSession, resource_id: uuid.UUID
) -> Response[Any]:
    form = Form(await request.form())
    name, kind, capacity, commission, branch_ids = _resource_form(form)
    problems = dict(form.errors)
    if not problems:
        patch = service.ResourcePatch(
            name=name,
            kind=kind,
            capacity=capacity or 0,
            commission_bps=commission,
            branch_ids=tuple(branch_ids),
        )
        try:
            await service.update_resource(session, actor(request), resource_id, patch, now())
        except errors.ValidationFailed as error:
            problems = field_errors(error, RESOURCE_MESSAGES)
        except CapacityBelowBookings:
            problems = {"capacity": N_("Upcoming bookings already need more capacity than this.")}
        else:
            return Redirect(f"/dashboard/catalog/resources/{resource_id}?saved=1", status_code=303)
    return await _resource_page(
        request, session, resource_id, values=form.values, problems=problems, status=422
    )


@post("/catalog/resources/{resource_id:uuid}/archive", include_in_schema=False)
async def archive_resource(
    request: AnyRequest, session: AsyncSession, resource_id: uuid.UUID
) -> Response[Any]:
    archived = Form(await request.form()).flag("archived")
    patch = service.ResourcePatch(archived=archived)
    await service.update_resource(session, actor(request), resource_id, patch, now())
    return Redirect(f"/dashboard/catalog/resources/{resource_id}?saved=1", status_code=303)
