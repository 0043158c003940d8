"""`reckon outbox list|retry`: the operator's view across tenants.

Runs as the migration owner (settings.database_url), like `reckon migrate`: an operator
looking for dead rows does not know which tenant they belong to.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import text

from app.db import create_engine, session_factory
from app.outbox import service
from app.outbox.errors import OutboxEntryNotFound
from app.outbox.models import OutboxEntry


class OutboxCliSettings(Protocol):
    @property
    def database_url(self) -> str: ...


async def list_entries(
    settings: OutboxCliSettings,
    status: str = "dead",
    *,
    tenant_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[OutboxEntry]:
    checked = service.check_status(status)
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    f"SELECT {service.ENTRY_COLUMNS} FROM outbox WHERE status = :status "
                    "AND (CAST(:tenant_id AS uuid) IS NULL OR tenant_id = :tenant_id) "
                    "ORDER BY seq DESC LIMIT :limit"
                ),
                {"status": checked, "tenant_id": tenant_id, "limit": limit},
            )
            entries = [service.entry_from_row(row) for row in rows]
            if not entries:
                return entries
            channels = await connection.execute(service.CHANNELS_OF, service.channel_keys(entries))
            return service.with_channels(entries, channels)
    finally:
        await engine.dispose()


async def retry_entries(
    settings: OutboxCliSettings, entry_ids: Sequence[uuid.UUID], *, channel: str | None = None
) -> list[OutboxEntry]:
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    sessions = session_factory(engine)
    retried: list[OutboxEntry] = []
    try:
        for entry_id in entry_ids:
            async with engine.connect() as connection:
                tenant_id = (
                    await connection.execute(
                        text("SELECT tenant_id FROM outbox WHERE id = :id"), {"id": entry_id}
                    )
                ).scalar_one_or_none()
            if tenant_id is None:
                raise OutboxEntryNotFound(entry_id=entry_id)
            async with sessions() as session:
                retried.append(
                    await service.retry_entry(
                        session, tenant_id, entry_id, datetime.now(UTC), channel=channel
                    )
                )
    finally:
        await engine.dispose()
    return retried


def format_entry(entry: OutboxEntry) -> str:
    """One line per entry; an entry that split adds one indented line per channel it owes."""
    error = "" if entry.channels else (entry.last_error or "").replace("\n", " ")[:120]
    lines = [
        f"{entry.id}  {entry.status:<9} {entry.attempts:>3}  {entry.topic:<28} "
        f"{entry.aggregate_type}:{entry.aggregate_id}  tenant={entry.tenant_id}  {error}"
    ]
    for delivery in entry.channels:
        if delivery.status != "delivered":
            detail = (delivery.last_error or "").replace("\n", " ")[:120]
            lines.append(
                f"    {delivery.status:<9} {delivery.attempts:>3}  {delivery.channel}  {detail}"
            )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="reckon outbox")
    commands = root.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list outbox rows by status")
    listing.add_argument("--status", default="dead", choices=["pending", "dead", "delivered"])
    listing.add_argument("--tenant", type=uuid.UUID, default=None)
    listing.add_argument("--limit", type=int, default=50)
    retry = commands.add_parser("retry", help="make rows due again with a fresh attempt budget")
    retry.add_argument("ids", nargs="+", type=uuid.UUID)
    retry.add_argument(
        "--channel", default=None, help="only this channel (default: every channel still owed)"
    )
    return root


def main(settings: OutboxCliSettings, argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    if args.command == "list":
        entries = asyncio.run(
            list_entries(settings, args.status, tenant_id=args.tenant, limit=args.limit)
        )
    else:
        entries = asyncio.run(retry_entries(settings, args.ids, channel=args.channel))
    for entry in entries:
        print(format_entry(entry))
    return 0
