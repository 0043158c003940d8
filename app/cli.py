"""The `reckon` command: dev, serve, worker, migrate, seed-demo, outbox, reconcile."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from app.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _ensure_root_on_path() -> None:
    # worker.py lives at the project root, next to the app package.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def cmd_migrate(_: argparse.Namespace) -> int:
    from app.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    print("migrations applied")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "app.asgi:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    return 0


def cmd_worker(_: argparse.Namespace) -> int:
    _ensure_root_on_path()
    from worker import build_worker

    build_worker(load_settings()).run()
    return 0


def cmd_seed_demo(_: argparse.Namespace) -> int:
    from app.demo import print_credentials, seed_demo

    credentials = asyncio.run(seed_demo(load_settings()))
    print_credentials(credentials)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything in one command: services (embedded unless URLs are set), migrations, demo
    data, the API and the worker. Ctrl-C stops it all."""
    from app.embedded import EmbeddedServices, default_data_dir
    from app.settings import normalise_database_url

    embedded = EmbeddedServices(default_data_dir())
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
    os.environ.update(env)
    children: list[subprocess.Popen[bytes]] = []
    try:
        cmd_migrate(args)
        cmd_seed_demo(args)
        python = sys.executable
        children.append(
            subprocess.Popen(
                [python, "-m", "app.cli", "serve", "--host", args.host, "--port", str(args.port)],
                env=env,
            )
        )
        children.append(subprocess.Popen([python, "-m", "app.cli", "worker"], env=env))
        base = f"http://{args.host}:{args.port}"
        print(
            f"\nReckon is running.\n  API docs:  {base}/schema/swagger\n"
            f"  OpenAPI:   {base}/schema/openapi.json\n  Health:    {base}/health/ready\n"
            f"  Metrics:   {base}/metrics\nPress Ctrl-C to stop.\n",
            flush=True,
        )
        return _wait(children)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)
        embedded.stop()
        print("stopped.")


def _wait(children: Sequence[subprocess.Popen[bytes]]) -> int:
    while True:
        for child in children:
            code = child.poll()
            if code is not None:
                print(
                    f"process {child.pid} exited with {code}",
                    file=sys.stderr,
                )
                return code or 1
        time.sleep(0.3)


def _stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reckon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("dev", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
    sub.add_parser("worker")
    sub.add_parser("migrate")
    sub.add_parser("seed-demo")
    _add_extensions(sub)
    return parser


def _add_extensions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands contributed by domains (outbox, reconcile)."""
    from app import cli_extensions

    cli_extensions.register(sub)


HANDLERS = {
    "dev": cmd_dev,
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
