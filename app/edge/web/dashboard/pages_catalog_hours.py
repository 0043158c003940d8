"""A resource's calendar (owners and admins): the weekly hours editor (several open intervals
per weekday) with date overrides, saved together by set_schedule exactly as
PUT /api/v1/resources/{id}/schedule saves them, and time off added by add_time_off.

The form works without JavaScript: each day shows its intervals and one empty row (an empty
row is ignored); hours-editor.js adds and removes rows in place."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.catalog import service
from app.catalog.checks import clock_text
from app.catalog.specs import OverrideInput, WeeklyInput
from app.catalog.views import ResourceDetail
from app.edge.web.dashboard.pages_catalog_forms import (
    Form,
    actor,
    as_uuid,
    field_errors,
    indexed,
    local_moment,
)
from app.edge.web.dashboard.queries import get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest
from app.presentation.i18n import N_

WEEK = range(7)
TIME = N_("Enter a time of day, like 09:00, before the closing time.")
BRANCH = N_("Choose one of this resource's branches.")
OVERLAP = N_("Some hours on the same day overlap. Change them so they do not.")
OVERRIDE_DATE = N_("Enter the date.")
OVERRIDE_OVERLAP = N_("A closed date takes no hours, and the hours of one date must not overlap.")
TIME_OFF_MESSAGES = {
    "start": N_("Enter when the time off starts."),
    "end": N_("Enter when the time off ends, after it starts."),
    "reason": N_("Enter a reason of at most 500 characters, or leave it empty."),
}


@dataclass
class HoursForm:
    """The editor's rows: per weekday a list of (start, end, branch); dated overrides."""

    days: list[list[dict[str, str]]] = field(default_factory=lambda: [[] for _ in WEEK])
    overrides: list[dict[str, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # What set_schedule takes, and the form row each input came from ("day-row" / row).
    weekly: list[WeeklyInput] = field(default_factory=list)
    weekly_rows: list[str] = field(default_factory=list)
    dated: list[OverrideInput] = field(default_factory=list)
    dated_rows: list[int] = field(default_factory=list)


def _current(detail: ResourceDetail) -> HoursForm:
    hours = HoursForm()
    for window in detail.schedule.weekly:
        hours.days[window.weekday].append(
            {
                "start": clock_text(window.start) or "",
                "end": clock_text(window.end) or "",
                "branch": str(window.branch_id),
            }
        )
    for override in detail.schedule.overrides:
        hours.overrides.append(
            {
                "date": override.on_date.isoformat(),
                "kind": "closed" if override.closed else "hours",
                "start": clock_text(override.start) or "",
                "end": clock_text(override.end) or "",
            }
        )
    return hours


def _zone(
    business_tz: ZoneInfo, detail: ResourceDetail, branches: dict[uuid.UUID, Any]
) -> ZoneInfo:
    """Hours are the wall clock of the resource's (first) branch."""
    for branch_id in detail.resource.branch_ids:
        if branch_id in branches:
            return ZoneInfo(branches[branch_id].timezone)
    return business_tz


async def _hours_page(
    request: AnyRequest,
    session: AsyncSession,
    resource_id: uuid.UUID,
    *,
    hours: HoursForm | None = None,
    time_off: dict[str, Any] | None = None,
    time_off_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    detail = await service.get_resource(session, tenant_id, resource_id)
    branches = {b.id: b for b in await service.list_branches(session, tenant_id, archived=None)}
    hours = hours or _current(detail)
    # Every day (and the dates) shows its rows and one empty row to add another: a form
    # that comes back with errors keeps its rows in place, so the ids its errors name hold.
    for rows in hours.days:
        if not rows or rows[-1]["start"] or rows[-1]["end"]:
            rows.append({"start": "", "end": "", "branch": ""})
    dated = hours.overrides
    if not dated or dated[-1]["date"] or dated[-1]["start"] or dated[-1]["end"]:
        dated.append({"date": "", "kind": "closed", "start": "", "end": ""})
    tz = _zone(business.tz, detail, branches)
    return page(
        request,
        "dashboard/catalog/hours.html",
        status=status,
        business=business,
        resource=detail.resource,
        branches=[branches[b] for b in detail.resource.branch_ids if b in branches],
        hours=hours,
        errors=hours.errors,
        time_off=sorted(detail.schedule.time_off, key=lambda t: t.start, reverse=True),
        time_off_values=time_off or {},
        time_off_errors=time_off_errors or {},
        tz=tz,
        saved=request.query_params.get("saved"),
    )


@get("/catalog/resources/{resource_id:uuid}/hours", include_in_schema=False)
async def hours(request: AnyRequest, session: AsyncSession, resource_id: uuid.UUID) -> Template:
    return await _hours_page(request, session, resource_id)


def _read(form: Form, only_branch: uuid.UUID | None) -> HoursForm:
    """The submitted rows (to show again), the use case's inputs, and each input's row."""
    read = HoursForm()
    for day in WEEK:
        starts, ends = form.texts(f"start-{day}"), form.texts(f"end-{day}")
        chosen = form.texts(f"branch-{day}")
        for row, (start, end) in enumerate(zip(starts, ends, strict=False)):
            branch = chosen[row] if row < len(chosen) else ""
            read.days[day].append({"start": start, "end": end, "branch": branch})
            if not start and not end:
                continue
            branch_id = as_uuid(branch) or only_branch
            if branch_id is None:
                read.errors[f"branch-{day}-{row}"] = BRANCH
                continue
            read.weekly.append(WeeklyInput(day, start, end, branch_id))
            read.weekly_rows.append(f"{day}-{row}")
    columns = [form.texts(name) for name in ("ov_date", "ov_kind", "ov_start", "ov_end")]
    for row, (text, kind, start, end) in enumerate(zip(*columns, strict=False)):
        read.overrides.append({"date": text, "kind": kind, "start": start, "end": end})
        if not text and not start and not end:
            continue
        try:
            on_date = date.fromisoformat(text)
        except ValueError:
            read.errors[f"ov_date-{row}"] = OVERRIDE_DATE
            continue
        closed = kind == "closed"
        read.dated.append(
            OverrideInput(on_date, closed, None if closed else start, None if closed else end)
        )
        read.dated_rows.append(row)
    return read


def _messages(read: HoursForm) -> dict[str, str]:
    messages = {"weekly": OVERLAP, "overrides": OVERRIDE_OVERLAP}
    for row in read.weekly_rows:
        messages |= {f"start-{row}": TIME, f"end-{row}": TIME, f"branch-{row}": BRANCH}
    for index in read.dated_rows:
        messages |= {f"ov_date-{index}": OVERRIDE_DATE, f"ov_start-{index}": TIME}
        messages[f"ov_end-{index}"] = TIME
    return messages


def _rename(read: HoursForm) -> Callable[[str], str | None]:
    """The API's field names (`weekly[2].end`) as the editor's inputs (`end-1-0`)."""
    weekly_rows, override_rows = read.weekly_rows, read.dated_rows

    def rename(name: str) -> str | None:
        if name in ("weekly", "overrides"):
            return name
        found = indexed(name)
        if found is None:
            return None
        group, index, part = found
        if group == "weekly" and index < len(weekly_rows):
            column = {"start": "start", "end": "end", "branch_id": "branch"}.get(part, "start")
            return f"{column}-{weekly_rows[index]}"
        if group == "overrides" and index < len(override_rows):
            column = {"start": "ov_start", "end": "ov_end"}.get(part, "ov_date")
            return f"{column}-{override_rows[index]}"
        return None

    return rename


@post("/catalog/resources/{resource_id:uuid}/hours", include_in_schema=False)
async def save_hours(
    request: AnyRequest, session: AsyncSession, resource_id: uuid.UUID
) -> Response[Any]:
    principal = actor(request)
    detail = await service.get_resource(session, principal.tenant_id, resource_id)
    branch_ids = detail.resource.branch_ids
    form = Form(await request.form())
    read = _read(form, branch_ids[0] if len(branch_ids) == 1 else None)
    if not read.errors:
        try:
            await service.set_schedule(
                session, principal, resource_id, weekly=read.weekly, overrides=read.dated
            )
        except errors.ValidationFailed as error:
            read.errors = field_errors(error, _messages(read), _rename(read))
        else:
            return Redirect(
                f"/dashboard/catalog/resources/{resource_id}/hours?saved=hours", status_code=303
            )
    return await _hours_page(request, session, resource_id, hours=read, status=422)


@post("/catalog/resources/{resource_id:uuid}/time-off", include_in_schema=False)
async def add_time_off(
    request: AnyRequest, session: AsyncSession, resource_id: uuid.UUID
) -> Response[Any]:
    principal = actor(request)
    business = await get_business(session, principal.tenant_id)
    detail = await service.get_resource(session, principal.tenant_id, resource_id)
    branches = {b.id: b for b in await service.list_branches(session, principal.tenant_id)}
    tz = _zone(business.tz, detail, branches)
    form = Form(await request.form())
    start = local_moment(form.text("start"), tz)
    end = local_moment(form.text("end"), tz)
    reason = form.text("reason", limit=600) or None
    problems: dict[str, str] = {}
    if start is None:
        problems["start"] = TIME_OFF_MESSAGES["start"]
    if end is None:
        problems["end"] = TIME_OFF_MESSAGES["end"]
    if start is not None and end is not None:
        try:
            await service.add_time_off(
                session, principal, resource_id, start=start, end=end, reason=reason
            )
        except errors.ValidationFailed as error:
            problems = field_errors(error, TIME_OFF_MESSAGES)
        else:
            return Redirect(
                f"/dashboard/catalog/resources/{resource_id}/hours?saved=time-off#time-off",
                status_code=303,
            )
    return await _hours_page(
        request,
        session,
        resource_id,
        time_off=form.values,
        time_off_errors=problems,
        status=422,
    )
