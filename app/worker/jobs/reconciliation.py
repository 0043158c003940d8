"""The nightly reconciliation cron and the discrepancy notice (the run itself is
app/gateways/reconciliation_run.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arq.cron import cron

from app.gateways.reconciliation_run import reconcile_all
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.models import OutboxEvent
from app.reconciliation import service
from app.worker.context import context_of

NIGHTLY = "reconciliation.nightly"


async def nightly(ctx: dict[str, Any]) -> int:
    """Yesterday (UTC date; each tenant's window is its own local day of that date)."""
    context = context_of(ctx)
    providers = context.deps.providers
    tolerances = context.deps.tolerances
    day = datetime.now(UTC).date() - timedelta(days=1)
    return await reconcile_all(context.sessions, providers, day, tolerances=tolerances)


async def notify_discrepancies(ctx: HandlerContext, event: OutboxEvent) -> None:
    """The hook owners are told through (WhatsApp/email templates plug in here); until a
    channel is configured it is a structured log line the alerting picks up."""
    ctx.log(event).warning(
        service.TOPIC_FOUND,
        run_id=event.payload["run_id"],
        provider=event.payload["provider"],
        date=event.payload["date"],
        new=event.payload["new_discrepancies"],
    )


def register_handlers(dispatcher: Dispatcher) -> None:
    dispatcher.register(service.TOPIC_FOUND, notify_discrepancies)


CRON_JOBS = [
    cron(
        nightly,
        name=NIGHTLY,
        hour={2},
        minute={30},
        run_at_startup=False,
        unique=True,
        timeout=3600,
    )
]
