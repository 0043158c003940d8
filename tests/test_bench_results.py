"""bench/run_all.py's table, built from the figures real runs printed on the shared 2-core
machine (bench/checkout_http.py --seconds 6 at load average ~10, bench/outbox.py --seconds 4,
bench/contention.py --requests 200) as RESULT lines among the benchmarks' own lines."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from _results import parse, table

OUTPUT = """\
checkout over HTTP (POST /api/v1/bookings, sandbox, Idempotency-Key on each), 2 API processes
  max     :      9.2 bookings/s   answers {201: 55}
  pgbench :    151.4 tx/s (the request's 26 statements in 3 transactions, 931 replays)
RESULT {"name": "checkout_http.rate", "label": "checkout over HTTP vs pgbench", \
"value": 9.1667, "limit": 151.3581, "unit": "/s", "goal": ">=", "target": 0.5}
RESULT {"name": "checkout_http.p99", "label": "checkout over HTTP p99 at half max", \
"value": 1163.5525, "limit": 50.0, "unit": "ms", "goal": "<=", "target": 1.0}
RESULT {"name": "checkout_http.api_rss", "label": "checkout over HTTP: API peak RSS", \
"value": 145.9961, "limit": null, "unit": "MB", "goal": null, "target": 1.0}
latency @ 200/s for 4s, 2 relays: n=800 p50=5.7 ms p99=16.8 ms max=324.9 ms
RESULT {"name": "outbox.p99", "label": "outbox commit\u2192handled p99 at 200/s", \
"value": 16.794, "limit": 25.0, "unit": "ms", "goal": "<=", "target": 1.0}
RESULT {"name": "contention.reckon.c1.wrong", "label": "reckon, capacity 1: wrong outcomes \
+ 5xx", "value": 0.0, "limit": 0.0, "unit": "", "goal": "<=", "target": 1.0}
"""


def test_table_has_one_row_per_result_line_with_ratio_and_verdict() -> None:
    results = parse(OUTPUT)

    assert [r.name for r in results] == [
        "checkout_http.rate",
        "checkout_http.p99",
        "checkout_http.api_rss",
        "outbox.p99",
        "contention.reckon.c1.wrong",
    ]
    rows = table(results).splitlines()
    assert rows[0] == "| figure | measured | limit | ratio | goal met? |"
    # 9.17 of pgbench's 151 tx/s is 0.06, short of the 0.5 the issue asks for.
    assert rows[2] == (
        "| checkout over HTTP vs pgbench | 9.17 /s | 151 /s | 0.06 (goal >= 0.5) | **no** |"
    )
    assert rows[3] == (
        "| checkout over HTTP p99 at half max | 1,164 ms | 50 ms | 23.27 (goal <= 1) | **no** |"
    )
    # Peak RSS has no goal: reported, no verdict.
    assert rows[4] == "| checkout over HTTP: API peak RSS | 146 MB | — | — | — |"
    # 16.8 ms against a limit of 25 ms.
    assert rows[5] == (
        "| outbox commit→handled p99 at 200/s | 16.8 ms | 25 ms | 0.67 (goal <= 1) | yes |"
    )
    # A count that must be zero has no ratio, and a verdict.
    assert rows[6] == "| reckon, capacity 1: wrong outcomes + 5xx | 0 | 0 | — | yes |"
