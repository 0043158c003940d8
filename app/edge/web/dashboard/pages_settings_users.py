"""Users and roles (owners and admins): everyone who can sign in, a new admin or staff member
with a first password (create_user, as POST /api/v1/users), a role or linked resource
changed, and a user deactivated or reactivated (update_user, as PATCH /api/v1/users/{id}).
The use case's rules stand: only an owner changes an owner, nobody deactivates themselves,
the last owner stays."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.catalog.service import list_resources
from app.edge.web.dashboard.labels import ROLE_LABELS
from app.edge.web.dashboard.pages_catalog_forms import Form, actor, as_uuid, field_errors
from app.edge.web.dashboard.queries import get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest
from app.presentation.i18n import N_
from app.tenancy import service
from app.tenancy.service import CannotDeactivateSelf, EmailTaken, LastOwner

MESSAGES = {
    "email": N_("Enter a valid email address, like name@example.com."),
    "password": N_("Enter a first password of 8 to 256 characters."),
    "role": N_("Choose admin or staff."),
    "resource_id": N_("Choose one of your resources, or none."),
}
REFUSALS: dict[type[errors.DomainError], str] = {
    CannotDeactivateSelf: N_("You cannot deactivate your own account."),
    LastOwner: N_("The business must keep at least one active owner."),
    errors.Forbidden: N_("Only an owner may change an owner."),
}


async def _users_page(
    request: AnyRequest,
    session: AsyncSession,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    refused: str | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    users = await service.list_users(session, tenant_id)
    resources = await list_resources(session, tenant_id, archived=None)
    return page(
        request,
        "dashboard/settings/users.html",
        status=status,
        business=business,
        users=users,
        resources=resources,
        resource_names={r.id: r.name for r in resources},
        roles=ROLE_LABELS,
        values=values or {"role": "staff"},
        errors=problems or {},
        refused=refused,
        saved=request.query_params.get("saved") == "1",
    )


@get("/settings/users", include_in_schema=False)
async def users(request: AnyRequest, session: AsyncSession) -> Template:
    return await _users_page(request, session)


@post("/settings/users", include_in_schema=False)
async def create_user(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    form = Form(await request.form())
    email, role = form.text("email", limit=300), form.text("role")
    password = str(form.data.get("password") or "")
    resource = form.text("resource_id")
    try:
        await service.create_user(
            session,
            actor(request),
            email=email,
            password=password,
            role=role,
            resource_id=as_uuid(resource),
        )
    except errors.ValidationFailed as error:
        problems = field_errors(error, MESSAGES)
    except EmailTaken:
        problems = {"email": N_("Someone in this business already signs in with this email.")}
    else:
        return Redirect("/dashboard/settings/users?saved=1", status_code=303)
    return await _users_page(request, session, values=form.values, problems=problems, status=422)


async def _update(
    request: AnyRequest, session: AsyncSession, user_id: uuid.UUID, patch: service.UserPatch
) -> Response[Any]:
    try:
        await service.update_user(session, actor(request), user_id, patch)
    except errors.ValidationFailed as error:
        found = field_errors(error, MESSAGES)
        refused = next(iter(found.values()))
    except (CannotDeactivateSelf, LastOwner, errors.Forbidden) as error:
        refused = next(m for kind, m in REFUSALS.items() if isinstance(error, kind))
    else:
        return Redirect("/dashboard/settings/users?saved=1", status_code=303)
    return await _users_page(request, session, refused=refused, status=409)


@post("/settings/users/{user_id:uuid}", include_in_schema=False)
async def update_user(
    request: AnyRequest, session: AsyncSession, user_id: uuid.UUID
) -> Response[Any]:
    form = Form(await request.form())
    role = form.text("role")
    resource = as_uuid(form.text("resource_id"))
    patch = service.UserPatch(resource_id=resource)
    if role:  # an owner's row has no role choice
        patch = service.UserPatch(role=role, resource_id=resource)
    return await _update(request, session, user_id, patch)


@post("/settings/users/{user_id:uuid}/active", include_in_schema=False)
async def set_active(
    request: AnyRequest, session: AsyncSession, user_id: uuid.UUID
) -> Response[Any]:
    active = Form(await request.form()).flag("active")
    return await _update(request, session, user_id, service.UserPatch(active=active))
