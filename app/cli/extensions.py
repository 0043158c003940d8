"""Domain subcommands of `reckon` (outbox list|retry, reconcile). Each sets `handler`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import date

from app.payments.provider_names import ROUTED_PROVIDERS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reconcile = sub.add_parser("reconcile", help="reconcile one day with a payment provider")
    reconcile.add_argument("--provider", required=True, choices=ROUTED_PROVIDERS)
    reconcile.add_argument(
        "--date", required=True, type=date.fromisoformat, help="local day to reconcile, YYYY-MM-DD"
    )
    reconcile.add_argument(
        "--tenant", type=uuid.UUID, default=None, help="one tenant id (default: every tenant)"
    )
    reconcile.set_defaults(handler=cmd_reconcile)
    outbox = sub.add_parser(
        "outbox", help="list outbox rows, or make dead rows due again", add_help=False
    )
    outbox.add_argument("rest", nargs=argparse.REMAINDER)
    outbox.set_defaults(handler=cmd_outbox)


def cmd_outbox(args: argparse.Namespace) -> int:
    from app.outbox.cli import main
    from app.settings import load_settings

    return main(load_settings(), args.rest or ["--help"])


def progress_bar(stage: str, done: int, total: int) -> None:
    """A plain stderr progress bar: one line per stage, redrawn in place."""
    width = 30
    filled = width if total == 0 else width * done // max(total, 1)
    bar = "#" * filled + "-" * (width - filled)
    end = "\n" if done >= total else ""
    print(f"\r{stage:<6} [{bar}] {done}/{total}", end=end, file=sys.stderr, flush=True)


def cmd_reconcile(args: argparse.Namespace) -> int:
    return asyncio.run(_reconcile(args.provider, args.date, args.tenant))


async def _reconcile(provider: str, day: date, tenant: uuid.UUID | None) -> int:
    from app.db import create_engine, session_factory
    from app.gateways.accounts import build_providers
    from app.gateways.reconciliation_run import reconcile_day
    from app.settings import load_settings
    from app.tenancy.service import all_tenants

    settings = load_settings()
    engine = create_engine(settings.runtime_database_url)
    providers = build_providers(settings)
    failures = 0
    try:
        sessions = session_factory(engine)
        tenants = [tenant] if tenant else await all_tenants(sessions)
        for number, tenant_id in enumerate(tenants, 1):
            print(f"tenant {tenant_id} ({number}/{len(tenants)})", file=sys.stderr)
            try:
                stored = await reconcile_day(
                    sessions, tenant_id, provider, day, providers, progress=progress_bar
                )
            except Exception as exc:  # one tenant failing must not stop the others
                failures += 1
                print(f"  failed: {exc}", file=sys.stderr)
                continue
            run = stored.run
            print(
                f"  {run.provider} {run.run_date}: {run.provider_records} provider records, "
                f"{run.matched} matched, {run.discrepancies} discrepancies"
            )
    finally:
        if providers.http is not None:
            await providers.http.aclose()
        await engine.dispose()
    return 1 if failures else 0
