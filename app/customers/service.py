"""Matching a booking to its customer, inside the booking's own transaction.

By normalised email, else normalised phone; with neither, by name among the customers known
by name only. A new customer is created with INSERT ... ON CONFLICT DO NOTHING against the
unique indexes on those keys (migration 0018): when two bookings by the same new customer
race, one insert wins, the other waits for it, inserts nothing, and reads the winner's row
on its next statement (READ COMMITTED takes a new snapshot per statement). No row lock and
no savepoint: a booking that loses its slot rolls its customer back with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import EMAIL_KEY, NAME_KEY, PHONE_KEY
from app.db import new_id, psycopg_sql
from app.errors import Contention

# A lost race is settled by the next statement; three rounds cover a winner that is then
# itself rolled back (its slot lost) while a third booker inserts.
ATTEMPTS = 3

_MATCH_OR_CREATE = text(
    f"""
    WITH wanted AS (
        SELECT {EMAIL_KEY.format("CAST(:email AS text)")} AS ek,
               {PHONE_KEY.format("CAST(:phone AS text)")} AS pk,
               {NAME_KEY.format("CAST(:name AS text)")} AS nk
    ), found AS (
        SELECT c.id FROM customers c, wanted w
         WHERE c.tenant_id = :tenant_id
           AND (c.email_key = w.ek OR c.phone_key = w.pk
                OR (w.ek IS NULL AND w.pk IS NULL AND c.email_key IS NULL
                    AND c.phone_key IS NULL AND c.name_key = w.nk))
         ORDER BY c.email_key IS NOT DISTINCT FROM w.ek DESC, c.created_at, c.id
         LIMIT 1
    ), created AS (
        INSERT INTO customers (tenant_id, id, name, email, phone, locale, created_at)
        SELECT :tenant_id, :id, btrim(CAST(:name AS text)), NULLIF(btrim(CAST(:email AS text)), ''),
               NULLIF(btrim(CAST(:phone AS text)), ''), :locale, :now
         WHERE NOT EXISTS (SELECT 1 FROM found)
        ON CONFLICT DO NOTHING
        RETURNING id
    )
    SELECT id FROM found UNION ALL SELECT id FROM created
    """
)
_MATCH_OR_CREATE_SQL = psycopg_sql(_MATCH_OR_CREATE)


class Who(TypedDict):
    """The keyword arguments of match_customer and match_statement that name the customer."""

    name: str
    email: str | None
    phone: str | None
    locale: str


async def match_customer(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    name: str,
    email: str | None,
    phone: str | None,
    locale: str,
    now: datetime,
) -> uuid.UUID:
    """The id of the booking's customer, found or created. In the caller's transaction,
    tenant set; call it before any other row lock so lock order stays the same everywhere."""
    params = _match_params(tenant_id, name, email, phone, locale, now)
    for _ in range(ATTEMPTS):
        found = (await session.execute(_MATCH_OR_CREATE, {**params, "id": new_id()})).first()
        if found is not None:
            customer_id: uuid.UUID = found[0]
            return customer_id
    raise Contention("The customer record is being written by another booking; try again")


def match_statement(
    tenant_id: uuid.UUID,
    *,
    name: str,
    email: str | None,
    phone: str | None,
    locale: str,
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """match_customer's first attempt as psycopg SQL, for a caller that sends it with other
    statements in one round trip (app.db.run_together), before any row lock as
    match_customer. Its rows name the customer; none (a race lost): call match_customer."""
    params = _match_params(tenant_id, name, email, phone, locale, now)
    return _MATCH_OR_CREATE_SQL, {**params, "id": new_id()}


def _match_params(
    tenant_id: uuid.UUID,
    name: str,
    email: str | None,
    phone: str | None,
    locale: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "name": name,
        "email": email,
        "phone": phone,
        "locale": locale,
        "now": now,
    }
