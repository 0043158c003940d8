"""The `reckon` command: dev, serve, worker, migrate, seed-demo, outbox, reconcile."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from app.settings import SettingRejected, load_settings

if TYPE_CHECKING:
    from app.cli.embedded import EmbeddedServices

ROOT = Path(__file__).resolve().parents[2]
# How long the API and the worker get to finish in-flight work after SIGTERM before SIGKILL.
DRAIN_SECONDS = 10.0
CATCHER_SMTP_PORT = 1025
CATCHER_HTTP_PORT = 8025
# Set by `reckon dev` for the API and worker it starts (see _exit_with_parent).
PARENT_PID_VARIABLE = "RECKON_DEV_PARENT_PID"
PR_SET_PDEATHSIG = 1


def _ensure_root_on_path() -> None:
    # worker.py lives at the project root, next to the app package.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def cmd_migrate(_: argparse.Namespace) -> int:
    from app.cli.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    if settings.app_role_password:
        # Migration 0014 sets it once; repeating it here makes RECKON_APP_PASSWORD the source of
        # truth, so changing it and re-running `reckon migrate` rotates the password.
        _set_app_role_password(settings.database_url, settings.app_role_password)
    print("migrations applied")
    return 0


def _set_app_role_password(owner_url: str, password: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from app.settings import set_app_role_password

    conninfo = make_url(owner_url).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False)) as connection:
        set_app_role_password(connection, password)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    _exit_with_parent()
    load_settings()  # refuse bad settings with their own message, before uvicorn wraps it
    uvicorn.run(
        "app.edge.asgi:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        # Open event streams would otherwise hold a SIGTERM'd server up indefinitely.
        timeout_graceful_shutdown=int(DRAIN_SECONDS / 2),
    )
    return 0


def cmd_worker(_: argparse.Namespace) -> int:
    _ensure_root_on_path()
    from worker import build_worker

    _exit_with_parent()
    build_worker(load_settings()).run()
    return 0


def _exit_with_parent() -> None:
    """Under `reckon dev`, have Linux send this process SIGTERM when `dev` dies, however it dies
    (SIGKILL included): a crashed `dev` must not leave an API holding its port."""
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # `dev` died before prctl took effect
        sys.exit(f"reckon dev (pid {parent}) has exited; stopping")


def cmd_seed_demo(_: argparse.Namespace) -> int:
    from app.cli.demo import print_credentials, seed_demo

    credentials = asyncio.run(seed_demo(load_settings()))
    print_credentials(credentials)
    return 0


class StopSignals:
    """SIGTERM (Docker, systemd, supervisors) and SIGINT (Ctrl-C) both ask `reckon dev` to stop.

    Python's default SIGTERM ends the process on the spot: no `finally` runs, and the API, the
    worker and the embedded servers (daemons) are orphaned. Recording the signal instead lets
    `dev` stop what it started, in order. Recording rather than raising also means a signal
    never lands in the middle of starting a server or applying a migration."""

    def __init__(self) -> None:
        self.received: int | None = None

    def install(self) -> StopSignals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    @property
    def requested(self) -> bool:
        return self.received is not None


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything in one command: services (embedded unless URLs are set), migrations, demo
    data, the API and the worker. SIGTERM or Ctrl-C stops it all: the API and the worker drain
    first, then the embedded servers stop."""
    from app.cli.embedded import DataDirInUse, EmbeddedServices, default_data_dir

    stop = StopSignals().install()
    embedded = EmbeddedServices(default_data_dir())
    children: list[subprocess.Popen[bytes]] = []
    try:
        env = _dev_environment(args, embedded)
        for step in (cmd_migrate, cmd_seed_demo):
            if stop.requested:
                return 0
            step(args)
        if stop.requested:
            return 0
        _start_children(args, env, children)
        base = f"http://{args.host}:{args.port}"
        print(
            f"\nReckon is running.\n  API docs:  {base}/schema/swagger\n"
            f"  OpenAPI:   {base}/schema/openapi.json\n  Health:    {base}/health/ready\n"
            f"  Metrics:   {base}/metrics\n  Booking site: {base}/\n"
            f"  Caught mail:  http://{args.host}:{CATCHER_HTTP_PORT}/\nPress Ctrl-C to stop.\n",
            flush=True,
        )
        return _wait(children, stop)
    except DataDirInUse as exc:
        print(f"reckon: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(children)
        embedded.stop()
        print("stopped.", flush=True)


def _dev_environment(args: argparse.Namespace, embedded: EmbeddedServices) -> dict[str, str]:
    from app.settings import normalise_database_url

    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        print(f"starting embedded PostgreSQL (data in {embedded.data_dir / 'postgres'}) ...")
        env["DATABASE_URL"] = embedded.start_postgres()
    if not env.get("REDIS_URL"):
        print("starting embedded Valkey ...")
        env["REDIS_URL"] = embedded.start_valkey()
    env["DATABASE_URL"] = normalise_database_url(env["DATABASE_URL"])
    env.setdefault("RECKON_ENV", "development")
    env.setdefault("LOG_JSON", "false")
    env.setdefault("PUBLIC_BASE_URL", f"http://{args.host}:{args.port}")
    # Confirmation mails go to the local catcher `dev` starts (listed at MAIL_CATCHER_PORT).
    env.setdefault("SMTP_HOST", "127.0.0.1")
    env.setdefault("SMTP_PORT", str(CATCHER_SMTP_PORT))
    os.environ.update(env)
    return env


def _start_children(
    args: argparse.Namespace, env: dict[str, str], children: list[subprocess.Popen[bytes]]
) -> None:
    """The API and the worker, each in its own process group: a terminal's Ctrl-C reaches only
    `dev`, which stops them in order instead of everything racing at once."""
    child_env = {**env, PARENT_PID_VARIABLE: str(os.getpid())}
    python = sys.executable
    for command in (
        [python, "-m", "app.cli.main", "serve", "--host", args.host, "--port", str(args.port)],
        [python, "-m", "app.cli.main", "worker"],
    ):
        children.append(subprocess.Popen(command, env=child_env, process_group=0))
    if _port_free(args.host, CATCHER_SMTP_PORT):
        catcher = [python, "-m", "app.cli.main", "mail-catcher", "--host", args.host]
        children.append(subprocess.Popen(catcher, env=child_env, process_group=0))
    else:
        print(f"mail catcher not started: port {CATCHER_SMTP_PORT} is in use", file=sys.stderr)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _wait(children: Sequence[subprocess.Popen[bytes]], stop: StopSignals) -> int:
    """Until a stop signal (0) or a child exits on its own (its code, at least 1)."""
    while not stop.requested:
        for child in children:
            code = child.poll()
            if code is not None:
                print(f"process {child.pid} exited with {code}", file=sys.stderr)
                return code or 1
        time.sleep(0.2)
    return 0


def _stop(children: Sequence[subprocess.Popen[bytes]], timeout: float = DRAIN_SECONDS) -> None:
    """SIGTERM to every child at once (uvicorn and arq both drain on it), then SIGKILL whatever
    is still running when the timeout runs out."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(
                f"process {child.pid} did not stop in {timeout:.0f} s; killing it", file=sys.stderr
            )
            child.kill()
            child.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reckon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("dev", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
    sub.add_parser("worker")
    catcher = sub.add_parser("mail-catcher", help="local SMTP server and a page of caught mail")
    catcher.add_argument("--host", default="127.0.0.1")
    sub.add_parser("migrate")
    sub.add_parser("seed-demo")
    _add_extensions(sub)
    return parser


def _add_extensions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands contributed by domains (outbox, reconcile)."""
    from app.cli import extensions as cli_extensions

    cli_extensions.register(sub)


def cmd_mail_catcher(args: argparse.Namespace) -> int:
    """What `dev` runs so the demo's confirmation mails can be read (never in production)."""
    from app.cli import mail_catcher as catcher

    _exit_with_parent()
    return catcher.main(
        [
            "--host",
            args.host,
            "--smtp-port",
            str(CATCHER_SMTP_PORT),
            "--http-port",
            str(CATCHER_HTTP_PORT),
        ]
    )


HANDLERS = {
    "dev": cmd_dev,
    "mail-catcher": cmd_mail_catcher,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "seed-demo": cmd_seed_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = HANDLERS.get(args.command) or args.handler
    try:
        return int(handler(args))
    except SettingRejected as exc:
        print(f"reckon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
