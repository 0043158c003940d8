"""The chaos harness in a small configuration: clients book, pay, cancel and refund while the
API and the worker are SIGKILLed and restarted, PostgreSQL is crash-stopped and restarted and
Redis is stopped for a while; nothing is lost, duplicated or left undone.

Runs bench/chaos.py as a subprocess (it starts its own PostgreSQL cluster, Redis, API, worker
and provider sink; the suite's servers are not touched)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.infra import ROOT

CHECKS = (
    "responses lost: 0",
    "duplicate bookings: 0",
    "keys without a definite answer: 0",
    "paid bookings not confirmed+captured: 0",
    "currencies whose postings do not sum to zero: 0",
    "outbox pending and due after drain: 0",
    "outbox dead rows/deliveries: 0",
    "duplicate effects: 0",
)


@pytest.fixture(autouse=True)
def clean_tables() -> Iterator[None]:
    """The harness brings its own database and servers: skip the suite's cleanup."""
    yield


def test_bookings_survive_sigkills_a_postgres_restart_and_a_redis_outage() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    args = ["--bookings", "30", "--clients", "4", "--kills", "3", "--seed", "17"]
    args += ["--pg-restarts", "1", "--redis-outages", "1", "--redis-outage-seconds", "10"]
    args += ["--outage-gap", "0.3"]  # both early: 30 bookings take about a second now
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for check in CHECKS:
        assert f"ok    {check}" in output, output[-6000:]
    kills = re.search(r"kills api / worker\s+(\d+) / (\d+)", output)
    assert kills is not None and int(kills[1]) + int(kills[2]) == 3, output[-6000:]
    assert re.search(r"postgres restarts \(s down\)\s+1 ", output), output[-6000:]
    assert re.search(r"redis outages \(s down\)\s+1 \(1\d\.", output), output[-6000:]
    calls = re.search(r"duplicate effects: 0 \((\d+) provider", output)
    assert calls is not None and int(calls[1]) > 0, output[-6000:]  # the sink was used
    assert "FAIL" not in output
