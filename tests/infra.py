"""Test infrastructure: real PostgreSQL and Redis, one migrated template, a database per
worker."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from app.cli.embedded import EmbeddedServices
from app.cli.migrate import upgrade
from app.settings import normalise_database_url, normalise_redis_url

ROOT = Path(__file__).resolve().parent.parent


def base_urls(embedded: EmbeddedServices) -> tuple[str, str]:
    database_url = os.environ.get("TEST_DATABASE_URL") or embedded.start_postgres()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    redis_url = os.environ.get("TEST_REDIS_URL") or embedded.start_valkey(name=f"valkey-{worker}")
    return normalise_database_url(database_url), normalise_redis_url(redis_url)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def libpq(url: str) -> str:
    """SQLAlchemy URL -> libpq conninfo for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "migrations").rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update((ROOT / "app" / "db.py").read_bytes())
    return digest.hexdigest()[:12]


def create_worker_database(base_url: str, worker: str) -> str:
    """Migrate a template once per migration set (under an advisory lock) and clone it."""
    template = f"reckon_tpl_{migrations_fingerprint()}"
    database = f"reckon_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = libpq(with_database(base_url, "postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(727274)")
        try:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (template,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{template}"')
                try:
                    upgrade(with_database(base_url, template))
                except BaseException:
                    connection.execute(f'DROP DATABASE "{template}"')
                    raise
            connection.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        finally:
            connection.execute("SELECT pg_advisory_unlock(727274)")
    return with_database(base_url, database)


def drop_database(base_url: str, url: str) -> None:
    database = make_url(url).database
    admin = libpq(with_database(base_url, "postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


_TABLES: dict[str, list[str]] = {}


def truncate_all(url: str) -> None:
    """Empty every table between tests.

    DELETE on small tables is far cheaper than TRUNCATE (which swaps files per table); the
    replica role switches off the append-only and foreign-key triggers for this cleanup only.
    """
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        if url not in _TABLES:
            _TABLES[url] = [
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            ]
        with connection.transaction():
            connection.execute("SET LOCAL session_replication_role = replica")
            for table in _TABLES[url]:
                connection.execute(f'DELETE FROM "{table}"')
