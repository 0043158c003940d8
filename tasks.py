#!/usr/bin/env python3
"""Zero-setup entry point. Needs only Python 3.11+.

    python3 tasks.py run     # the whole system with demo data (embedded PostgreSQL + Valkey)
    python3 tasks.py test    # quality gates + the test suite against real services

It creates .venv, installs uv into it, syncs the locked dependencies, then runs the command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def sh(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print("$", " ".join(str(a) for a in args), flush=True)
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env, check=False)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def bootstrap() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Reckon needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not (BIN / "uv").exists():
        sh(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    sh(BIN / "uv", "sync", "--frozen", "--quiet", env=env)


def run(extra: list[str]) -> None:
    bootstrap()
    os.execv(BIN / "reckon", [str(BIN / "reckon"), "dev", *extra])


def test(extra: list[str]) -> None:
    bootstrap()
    sh(BIN / "ruff", "check", ".")
    sh(BIN / "ruff", "format", "--check", ".")
    sh(BIN / "mypy")
    sh(BIN / "mypy", "worker.py")
    sh(BIN / "mypy", "bench")
    sh(BIN / "lint-imports")
    workers = os.environ.get("PYTEST_WORKERS", "2")
    sh(BIN / "pytest", "-p", "no:logging", "-n", workers, "--dist", "loadfile", *extra)


COMMANDS = {"run": run, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
