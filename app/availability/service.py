"""Availability queries: load a service's rules and its resources' calendars from PostgreSQL,
then ask the pure engine. The loaders run inside the caller's transaction (tenant already
set), so placing a booking re-reads exactly what it checks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.availability import engine, schedule
from app.availability.memo import AvailabilityMemo, Remembered
from app.catalog.errors import BranchArchived, ResourceArchived, ServiceArchived
from app.catalog.models import (
    Service,
)
from app.db import psycopg_sql, run_together, set_tenant
from app.errors import NotFound
from app.validation import check_timezone, field_error

MAX_RANGE_DAYS = 62
DEFAULT_CHECK_IN = time(15, 0)
DEFAULT_CHECK_OUT = time(11, 0)


@dataclass(frozen=True, slots=True)
class Candidate:
    resource_id: uuid.UUID
    capacity: int


@dataclass(frozen=True, slots=True)
class Offer:
    """A service as sold at one branch: its rules, local timezone, price and resources."""

    service: Service
    branch_id: uuid.UUID
    tz: ZoneInfo
    unit_price_minor: int
    pricing: str
    candidates: tuple[Candidate, ...]
    # Resources that would perform the service here but are archived: named, never offered.
    archived: frozenset[uuid.UUID] = frozenset()

    def candidate(self, resource_id: uuid.UUID) -> Candidate:
        for candidate in self.candidates:
            if candidate.resource_id == resource_id:
                return candidate
        if resource_id in self.archived:
            raise ResourceArchived("resource_id", resource_id)
        raise field_error("resource_id", "this resource does not perform the service here")


@dataclass(frozen=True, slots=True)
class StayOut:
    check_in_date: date
    nights: list[int]
    resource_id: uuid.UUID
    start: datetime


@dataclass(frozen=True, slots=True)
class Availability:
    timezone: str
    policy: str
    slots: list[engine.Slot]
    stays: list[StayOut] = field(default_factory=list)


# The branch's timezone and whether it is archived, its price override for the service, and
# the active resources that perform the service there (sorted by id), plus the archived ones
# (so asking for one by id says so): one round trip on every booking's hot path.
_BRANCH_AND_RESOURCES = text(
    """
    SELECT b.timezone, b.active, p.amount_minor, p.pricing, r.resource_ids, r.capacities,
           r.archived_ids
      FROM branches b
      LEFT JOIN service_branch_prices p
        ON p.tenant_id = b.tenant_id AND p.tenant_id = :tenant_id AND p.branch_id = b.id
       AND p.service_id = :service_id
      CROSS JOIN LATERAL (
        SELECT array_agg(res.id ORDER BY res.id) FILTER (WHERE res.active) AS resource_ids,
               array_agg(res.capacity ORDER BY res.id) FILTER (WHERE res.active) AS capacities,
               array_agg(res.id) FILTER (WHERE NOT res.active) AS archived_ids
          FROM resources res
          JOIN service_resources sr
            ON sr.tenant_id = res.tenant_id AND sr.resource_id = res.id
           AND sr.service_id = :service_id
          JOIN resource_branches rb
            ON rb.tenant_id = res.tenant_id AND rb.resource_id = res.id
           AND rb.branch_id = b.id
         WHERE res.tenant_id = b.tenant_id AND res.tenant_id = :tenant_id
      ) r
     WHERE b.tenant_id = :tenant_id AND b.id = :branch_id
    """
)


async def load_offer(
    session: AsyncSession, tenant_id: uuid.UUID, service_id: uuid.UUID, branch_id: uuid.UUID
) -> Offer:
    """The service as sold at the branch. NotFound for an unknown id; ServiceArchived or
    BranchArchived for one that is archived (it is known, and no longer offered)."""
    service = _check_service(await session.get(Service, (tenant_id, service_id)), service_id)
    branch = (
        await session.execute(
            _BRANCH_AND_RESOURCES,
            {
                "tenant_id": tenant_id,
                "branch_id": branch_id,
                "service_id": service_id,
            },
        )
    ).first()
    return _offer(service, branch, branch_id)


# load_offer's two reads as psycopg SQL, for a caller that sends them with other statements
# in one round trip (app.db.run_together): offer_statements, then offer_from on their rows.
_SERVICE_SQL = psycopg_sql(
    select(Service.__table__).where(
        Service.__table__.c.tenant_id == bindparam("tenant_id"),
        Service.__table__.c.id == bindparam("service_id"),
    )
)
_BRANCH_AND_RESOURCES_SQL = psycopg_sql(_BRANCH_AND_RESOURCES)


def offer_statements(
    tenant_id: uuid.UUID, service_id: uuid.UUID, branch_id: uuid.UUID
) -> list[tuple[str, dict[str, Any]]]:
    params = {"tenant_id": tenant_id, "service_id": service_id, "branch_id": branch_id}
    return [(_SERVICE_SQL, params), (_BRANCH_AND_RESOURCES_SQL, params)]


def offer_from(
    service_rows: Sequence[Any],
    branch_rows: Sequence[Any],
    service_id: uuid.UUID,
    branch_id: uuid.UUID,
) -> Offer:
    """load_offer's answer (and errors) from offer_statements' rows. The service is a
    transient instance (never added to the session): read, never written."""
    found = _transient_service(service_rows[0]) if service_rows else None
    service = _check_service(found, service_id)
    return _offer(service, branch_rows[0] if branch_rows else None, branch_id)


def _transient_service(row: Any) -> Service:
    """A Service from its row as SQLAlchemy's own loader builds one - the values straight into
    the instance's dict - not through the constructor, whose attribute events cost a booking
    more than the rest of the offer. Transient: never added to a session, never written."""
    service: Service = Service.__mapper__.class_manager.new_instance()
    service.__dict__.update(row._asdict())
    return service


def _check_service(service: Service | None, service_id: uuid.UUID) -> Service:
    if service is None:
        raise NotFound("Service not found", entity="service", id=str(service_id))
    if not service.active:
        raise ServiceArchived("service_id", service_id)
    return service


def _offer(service: Service, branch: Any, branch_id: uuid.UUID) -> Offer:
    if branch is None:
        raise NotFound("Branch not found", entity="branch", id=str(branch_id))
    if not branch.active:
        raise BranchArchived("branch_id", branch_id)
    overridden = branch.amount_minor is not None
    rows = zip(branch.resource_ids or [], branch.capacities or [], strict=True)
    return Offer(
        service=service,
        branch_id=branch_id,
        tz=check_timezone(branch.timezone),
        unit_price_minor=branch.amount_minor if overridden else service.price_minor,
        pricing=branch.pricing if overridden else service.pricing,
        candidates=tuple(Candidate(rid, capacity) for rid, capacity in rows),
        archived=frozenset(branch.archived_ids or ()),
    )


def _minutes(value: int | None, default: int) -> timedelta:
    return timedelta(minutes=value if value else default)


def slot_rule(service: Service) -> engine.SlotRule:
    duration = _minutes(service.duration_minutes, 60)
    return engine.SlotRule(
        duration=duration,
        step=_minutes(service.slot_step_minutes, int(duration.total_seconds() // 60)),
        buffer_before=timedelta(minutes=service.buffer_before_minutes),
        buffer_after=timedelta(minutes=service.buffer_after_minutes),
        min_notice=timedelta(minutes=service.min_notice_minutes),
        max_advance=timedelta(days=service.max_advance_days),
    )


def nightly_rule(service: Service) -> engine.NightlyRule:
    return engine.NightlyRule(
        check_in=service.check_in_time or DEFAULT_CHECK_IN,
        check_out=service.check_out_time or DEFAULT_CHECK_OUT,
        min_nights=service.min_nights or 1,
        max_nights=service.max_nights or 30,
        min_notice=timedelta(minutes=service.min_notice_minutes),
        max_advance=timedelta(days=service.max_advance_days),
    )


def interval_rule(service: Service) -> engine.IntervalRule:
    granularity = _minutes(service.slot_step_minutes, 30)
    return engine.IntervalRule(
        granularity=granularity,
        min_length=_minutes(service.min_minutes, int(granularity.total_seconds() // 60)),
        max_length=_minutes(service.max_minutes, 24 * 60),
        buffer_before=timedelta(minutes=service.buffer_before_minutes),
        buffer_after=timedelta(minutes=service.buffer_after_minutes),
        min_notice=timedelta(minutes=service.min_notice_minutes),
        max_advance=timedelta(days=service.max_advance_days),
    )


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


# One round trip for everything a calendar needs; `kind` says which table a row came from.
CALENDAR_ROWS = text(
    """
    SELECT 'hours' AS kind, resource_id, weekday, start_time, end_time,
           NULL::date AS on_date, NULL::boolean AS closed, NULL::timestamptz AS since,
           NULL::timestamptz AS until, NULL::int AS party_size, NULL::uuid AS id,
           NULL::boolean AS overdue
      FROM resource_hours WHERE tenant_id = :tenant AND resource_id = ANY(:ids)
       AND branch_id = :branch
    UNION ALL
    SELECT 'override', resource_id, NULL, start_time, end_time, on_date, closed, NULL, NULL,
           NULL, NULL, NULL
      FROM schedule_overrides WHERE tenant_id = :tenant AND resource_id = ANY(:ids)
       AND on_date BETWEEN :first AND :last
    UNION ALL
    SELECT 'time_off', resource_id, NULL, NULL, NULL, NULL, NULL, starts_at, ends_at, NULL,
           NULL, NULL
      FROM time_off WHERE tenant_id = :tenant AND resource_id = ANY(:ids)
       AND ends_at > :since AND starts_at < :until
    UNION ALL
    SELECT 'busy', resource_id, NULL, NULL, NULL, NULL, NULL, lower(blocked), upper(blocked),
           party_size, id, status = 'pending_payment' AND hold_expires_at <= :now
      FROM bookings WHERE tenant_id = :tenant AND resource_id = ANY(:ids)
       AND status IN ('pending_payment', 'confirmed', 'checked_in')
       AND blocked && tstzrange(:since, :until)
       AND (CAST(:exclude AS uuid) IS NULL OR id <> CAST(:exclude AS uuid))
    """
)


_CALENDAR_ROWS_SQL = psycopg_sql(CALENDAR_ROWS)


@dataclass(frozen=True, slots=True)
class Calendars:
    """Per-resource calendars, plus the overdue holds left out of them: a hold whose time is
    up no longer takes the slot, but its row must be expired before the slot is re-booked."""

    calendars: list[engine.ResourceCalendar]
    overdue_holds: list[uuid.UUID]


async def load_calendars(
    session: AsyncSession,
    offer: Offer,
    candidates: Sequence[Candidate],
    first: date,
    last: date,
    *,
    now: datetime,
    exclude_booking: uuid.UUID | None = None,
) -> Calendars:
    """Working windows and active bookings of `candidates` for local dates first..last.

    Busy intervals are read a day either side: buffers and overnight stays reach across
    midnight.
    """
    ids = [c.resource_id for c in candidates]
    if not ids:
        return Calendars([], [])
    # Straight through psycopg (app.db.run_together): on every booking's hot path, and the
    # rows need none of SQLAlchemy's per-statement and per-row work.
    (rows,) = await run_together(
        session,
        [
            (
                _CALENDAR_ROWS_SQL,
                {
                    "tenant": offer.service.tenant_id,
                    "ids": ids,
                    "branch": offer.branch_id,
                    "now": now,
                    "exclude": exclude_booking,
                    "first": first - timedelta(days=1),
                    "last": last + timedelta(days=1),
                    "since": local_midnight(first - timedelta(days=1), offer.tz),
                    "until": local_midnight(last + timedelta(days=2), offer.tz),
                },
            )
        ],
    )
    by_kind: dict[tuple[str, uuid.UUID], list[Any]] = {}
    for row in rows:
        by_kind.setdefault((row.kind, row.resource_id), []).append(row)
    calendars = []
    for candidate in candidates:
        rid = candidate.resource_id
        weekly = [
            schedule.WeeklyHours(h.weekday, h.start_time, h.end_time)
            for h in by_kind.get(("hours", rid), [])
        ]
        dated = [
            schedule.DateOverride(o.on_date, o.closed, o.start_time, o.end_time)
            for o in by_kind.get(("override", rid), [])
        ]
        off = [schedule.Window(t.since, t.until) for t in by_kind.get(("time_off", rid), [])]
        windows = schedule.open_windows(
            weekly, dated, off, offer.tz, first - timedelta(days=1), last + timedelta(days=1)
        )
        taken = [
            engine.Busy(b.since, b.until, b.party_size)
            for b in by_kind.get(("busy", rid), [])
            if not b.overdue
        ]
        calendars.append(engine.ResourceCalendar(rid, candidate.capacity, windows, taken, off))
    overdue = [row.id for row in rows if row.kind == "busy" and row.overdue]
    return Calendars(calendars, overdue)


# A fingerprint of exactly the rows CALENDAR_ROWS would read (same filters), folded in SQL so
# a caller can tell whether a calendar computed earlier still holds without fetching the rows.
# A booking counts by what the engine sees of it (resource, blocked range, party size, hold
# overdue or not), hashed as is: formatting 2,000 ranges as text would cost more.
CALENDAR_VERSION = text(
    """
    SELECT concat_ws(':',
      (SELECT count(*) || '.' || coalesce(sum(hashtextextended(concat_ws(',', resource_id,
              weekday, start_time, end_time), 0)), 0)
         FROM resource_hours WHERE tenant_id = :tenant AND resource_id = ANY(:ids)
       AND branch_id = :branch),
      (SELECT count(*) || '.' || coalesce(sum(hashtextextended(concat_ws(',', resource_id,
              on_date, closed, start_time, end_time), 0)), 0)
         FROM schedule_overrides
        WHERE tenant_id = :tenant AND resource_id = ANY(:ids) AND on_date BETWEEN :first AND :last),
      (SELECT count(*) || '.' || coalesce(sum(hashtextextended(concat_ws(',', resource_id,
              starts_at, ends_at), 0)), 0)
         FROM time_off WHERE tenant_id = :tenant AND resource_id = ANY(:ids)
       AND ends_at > :since AND starts_at < :until),
      (SELECT count(*) || '.' || coalesce(sum(hash_range_extended(blocked,
              uuid_hash_extended(resource_id, party_size * 2 + CASE
                WHEN status = 'pending_payment' AND hold_expires_at <= :now THEN 1 ELSE 0
              END))), 0)
         FROM bookings WHERE tenant_id = :tenant AND resource_id = ANY(:ids)
          AND status IN ('pending_payment', 'confirmed', 'checked_in')
          AND blocked && tstzrange(:since, :until))
    )
    """
)


async def calendar_version(
    session: AsyncSession,
    offer: Offer,
    candidates: Sequence[Candidate],
    first: date,
    last: date,
    *,
    now: datetime,
) -> str:
    """A fingerprint of what `load_calendars` would read for the same arguments: it changes
    when a booking, hold, working hour, override or time off in that range changes (or a
    hold runs out), so a result computed from those calendars may be reused while it holds."""
    ids = [c.resource_id for c in candidates]
    if not ids:
        return ""
    found = await session.scalar(
        CALENDAR_VERSION,
        {
            "tenant": offer.service.tenant_id,
            "ids": ids,
            "branch": offer.branch_id,
            "now": now,
            "first": first - timedelta(days=1),
            "last": last + timedelta(days=1),
            "since": local_midnight(first - timedelta(days=1), offer.tz),
            "until": local_midnight(last + timedelta(days=2), offer.tz),
        },
    )
    return str(found)


def check_range(first: date, last: date) -> None:
    if last < first:
        raise field_error("to", "must not be before from")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise field_error("to", f"the range may span at most {MAX_RANGE_DAYS} days")


@dataclass(frozen=True, slots=True)
class Answer:
    """What is free, and the memo entry it is when it was served unchanged from one (an edge
    may keep its rendering there)."""

    found: Availability
    remembered: Remembered | None = None


async def get_availability(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    service_id: uuid.UUID,
    branch_id: uuid.UUID,
    first: date,
    last: date,
    now: datetime,
    resource_id: uuid.UUID | None = None,
    party_size: int = 1,
    memo: AvailabilityMemo | None = None,
) -> Answer:
    """What is free. With a memo, a time-slot service's answer is reused while the calendar
    rows it came from hold (app/availability/memo.py)."""
    check_range(first, last)
    if not 1 <= party_size <= 1000:
        raise field_error("party_size", "must be between 1 and 1000")
    async with session.begin():
        await set_tenant(session, tenant_id)
        offer = await load_offer(session, tenant_id, service_id, branch_id)
        candidates = (
            [offer.candidate(resource_id)] if resource_id is not None else list(offer.candidates)
        )
        if memo is not None and offer.service.policy == "time_slot":
            return await _remembered(
                session, offer, candidates, (first, last), now, party_size, memo
            )
        # A stay that checks in on `last` runs on for up to max_nights: load that far.
        horizon = last
        if offer.service.policy == "nightly":
            horizon = last + timedelta(days=nightly_rule(offer.service).max_nights)
        loaded = await load_calendars(session, offer, candidates, first, horizon, now=now)
    return Answer(compute(offer, loaded.calendars, first, last, now, party_size))


async def _remembered(
    session: AsyncSession,
    offer: Offer,
    candidates: list[Candidate],
    days: tuple[date, date],
    now: datetime,
    party_size: int,
    memo: AvailabilityMemo,
) -> Answer:
    first, last = days
    version = await calendar_version(session, offer, candidates, first, last, now=now)
    rule = slot_rule(offer.service)
    key = (
        offer.service.tenant_id,
        offer.service.id,
        offer.branch_id,
        str(offer.tz),
        tuple(candidates),
        rule,
        party_size,
        first,
        last,
        now.replace(second=0, microsecond=0),
        version,
    )
    entry = memo.get(key)
    if entry is None:
        loaded = await load_calendars(session, offer, candidates, first, last, now=now)
        entry = Remembered(compute(offer, loaded.calendars, first, last, now, party_size))
        memo.put(key, entry)
        return Answer(entry.found, entry)
    # Remembered within this minute: drop what the minimum notice has ruled out since.
    earliest = now + rule.min_notice
    found = entry.found
    if all(slot.start >= earliest for slot in found.slots):
        return Answer(found, entry)
    slots = [slot for slot in found.slots if slot.start >= earliest]
    return Answer(Availability(found.timezone, found.policy, slots))


def compute(
    offer: Offer,
    calendars: Sequence[engine.ResourceCalendar],
    first: date,
    last: date,
    now: datetime,
    party_size: int,
) -> Availability:
    service, tz = offer.service, offer.tz
    if service.policy == "nightly":
        options = engine.nightly_options(
            nightly_rule(service), calendars, tz, first, last, now, party_size
        )
        stays = [StayOut(o.check_in_date, list(o.nights), o.resource_id, o.start) for o in options]
        return Availability(str(tz), service.policy, [], stays)
    if service.policy == "interval":
        slots = engine.interval_windows(
            interval_rule(service), calendars, first, last, tz, now, party_size
        )
    else:
        slots = engine.time_slots(slot_rule(service), calendars, tz, first, last, now, party_size)
    return Availability(str(tz), service.policy, slots)
