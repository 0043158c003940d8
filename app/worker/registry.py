"""Every job the worker runs, listed by hand: outbox handlers by topic, cron jobs and the
long-running background tasks. A new jobs module is added here, once; nothing is discovered
at run time, so a reader (or a tool) follows each topic from here to its handler.
"""

from __future__ import annotations

from arq.cron import CronJob

from app.outbox.dispatch import Dispatcher, Registrar
from app.worker.context import BackgroundTask
from app.worker.jobs import (
    bookings,
    calendar_sync,
    events,
    inbox,
    mail,
    notifications,
    outbox,
    payments,
    payouts,
    push,
    reconciliation,
)

# Outbox topics -> channels -> handlers (each module registers its own topics).
REGISTRARS: tuple[Registrar, ...] = (
    events.register_handlers,
    payouts.register_handlers,
    reconciliation.register_handlers,
    calendar_sync.register_handlers,
    notifications.register_handlers,
    payments.register_handlers,
    mail.register_handlers,
    push.register_handlers,
)

CRON_JOBS: tuple[CronJob, ...] = (
    *outbox.CRON_JOBS,
    *bookings.CRON_JOBS,
    *payouts.CRON_JOBS,
    *reconciliation.CRON_JOBS,
    *notifications.CRON_JOBS,
)

# Started with the worker, cancelled when it stops.
BACKGROUND: tuple[BackgroundTask, ...] = (outbox.run_relay, inbox.run_applier)


def build_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher()
    for register in REGISTRARS:
        register(dispatcher)
    return dispatcher
