"""Run alembic migrations programmatically (as the owner role)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


class UnsafeAppRole(RuntimeError):
    """The application role would bypass row-level security."""


_ROLE_FLAGS = "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %(role)s"


def assert_role_is_restricted(connection: Any, role: str = "reckon_app") -> None:
    """Refuse a role (e.g. a pre-existing `reckon_app`) that is superuser or has BYPASSRLS:
    every query it ran would see every business. `connection` is a DB-API connection."""
    with connection.cursor() as cursor:
        cursor.execute(_ROLE_FLAGS, {"role": role})
        row = cursor.fetchone()
    if row is not None and (row[0] or row[1]):
        raise UnsafeAppRole(
            f"role {role} is SUPERUSER or BYPASSRLS, so row-level security would not apply "
            f"to it; run ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS and migrate again"
        )
