"""Shared pieces of the checkout and webhook benchmarks: a scratch database, pgbench, figures.

The database comes from DATABASE_URL (the owner, e.g.
postgresql://postgres@127.0.0.1:5432/postgres), else BENCH_DATABASE_URL, else that default.
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.cli.migrate import upgrade  # noqa: E402
from app.settings import normalise_database_url  # noqa: E402
from tests.infra import libpq, with_database  # noqa: E402

PGBENCH = "/usr/bin/pgbench"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def base_url() -> str:
    raw = os.environ.get("DATABASE_URL") or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL
    return normalise_database_url(raw)


@asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[str]:
    """Create and migrate a throwaway database; yield its owner URL; drop it afterwards."""
    base = base_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = libpq(with_database(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(base, name)
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def client_collector_held() -> Iterator[None]:
    """The load generator's own garbage collector held off while it times a server in other
    processes: everything it holds so far is frozen out of the collector's way and collection
    waits until the timed phase ends. A full collection of this process (it imports the whole
    app to set up and replay) once took 120 ms in the middle of checkout_http's half-load
    phase, stopping every client at once, and was counted as the server's latency."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def pgbench(
    conninfo: str,
    script: str,
    *,
    clients: int,
    seconds: int,
    defines: dict[str, str],
    mode: str = "prepared",
) -> tuple[float, int, str]:
    """Run one pgbench script for `seconds`; returns (tps without connection time,
    transactions processed, raw output). Any failed transaction is an error: the figure would
    not mean what it says."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    args = [PGBENCH, "-n", "-M", mode, "-c", str(clients), "-j", str(min(clients, 8))]
    args += ["-T", str(seconds), "-f", handle.name]
    for key, value in defines.items():
        args += ["-D", f"{key}={value}"]
    try:
        done = subprocess.run([*args, conninfo], capture_output=True, text=True, check=False)
    finally:
        os.unlink(handle.name)
    out = done.stdout + done.stderr
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    count = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if done.returncode != 0 or tps is None or count is None or (failed and failed.group(1) != "0"):
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{out[-3000:]}")
    return float(tps.group(1)), int(count.group(1)), out
