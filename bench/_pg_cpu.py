"""CPU seconds a PostgreSQL server spends, read from /proc: only for servers on this machine.

A server is its postmaster and the processes it forks (backends, Citus's connections from
the coordinator, parallel workers, checkpointer, autovacuum...). Backends come and go while
a phase runs: Citus opens a worker connection for a transaction and closes it when more
than `citus.max_cached_conns_per_worker` are open, a pool's overflow connections close, so
summing the processes alive at two moments would lose whoever died in between, and polling
would still miss the ones that live less than a polling interval. Linux keeps that account
for us: when a parent reaps a child, the child's CPU (utime + stime, plus what the child had
itself reaped) is added to the parent's cutime + cstime. So at any moment

    utime + stime + cutime + cstime, summed over the postmaster and every live descendant,

counts each process's CPU exactly once, dead or alive, and only grows: the difference
between two samples is what the server did in between, every backend included, however
short-lived. The figure is the whole server's, every database on it: measure on a server
nothing else is using.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

TICKS = os.sysconf("SC_CLK_TCK")
NOT_HERE = "n/a (node not on this machine)"


@dataclass(frozen=True)
class Server:
    label: str  # "coordinator 127.0.0.1:9700"
    postmaster: int | None  # None: its data directory is not readable here


def locate(label: str, url: str, host: str, port: int) -> Server:
    """Ask the server at host:port (as `url`'s user) for its data directory; its postmaster
    is the first line of postmaster.pid there, if that file is on this machine and names the
    same port (a directory of the same path on another machine would not)."""
    name = f"{label} {host}:{port}"
    node = make_url(url).set(drivername="postgresql", host=host, port=port)
    try:  # a node named as its cluster's network knows it (compose: "worker1") may be out of reach
        with psycopg.connect(
            node.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
        ) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.Error:
        return Server(name, None)
    try:
        lines = (Path(str(row[0] if row else "")) / "postmaster.pid").read_text().splitlines()
        pid, listens = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return Server(name, None)
    if listens != port or not Path(f"/proc/{pid}").exists():
        return Server(name, None)
    return Server(name, pid)


def _processes() -> tuple[dict[int, list[int]], dict[int, int]]:
    """Every process's children, and its CPU ticks (utime + stime + cutime + cstime)."""
    children: dict[int, list[int]] = defaultdict(list)
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        fields = stat.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
        children[int(fields[1])].append(int(entry.name))
        ticks[int(entry.name)] = sum(int(f) for f in fields[11:15])
    return children, ticks


def cpu_seconds(servers: list[Server]) -> dict[str, float | None]:
    """Each server's CPU account (see the module's docstring) at this moment."""
    children, ticks = _processes()
    accounts: dict[str, float | None] = {}
    for server in servers:
        if server.postmaster is None or server.postmaster not in ticks:
            accounts[server.label] = None
            continue
        total, stack = 0, [server.postmaster]
        while stack:
            pid = stack.pop()
            total += ticks.get(pid, 0)
            stack.extend(children.get(pid, ()))
        accounts[server.label] = total / TICKS
    return accounts


@contextmanager
def measure(servers: list[Server]) -> Iterator[dict[str, float | None]]:
    """Filled on exit with each server's CPU seconds spent inside the block (None: n/a)."""
    used: dict[str, float | None] = {}
    before = cpu_seconds(servers)
    yield used
    after = cpu_seconds(servers)
    for label, start in before.items():
        end = after.get(label)
        used[label] = None if start is None or end is None else end - start
