"""Alembic environment. Migrations run as the database owner, over psycopg 3 (sync)."""

from __future__ import annotations

import importlib
import os
import pkgutil

from alembic import context
from sqlalchemy import create_engine, pool

import app
from app.db import Base
from app.settings import normalise_database_url


def _import_all_models() -> None:
    for module in pkgutil.iter_modules(app.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"app.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"app.{module.name}.models":
                    raise


_import_all_models()
target_metadata = Base.metadata


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    # The sync engine uses psycopg 3 as well: same driver everywhere.
    return normalise_database_url(url)


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
