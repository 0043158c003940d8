"""The schema has one head, and the migration chain downgrades and upgrades cleanly."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from app.migrate import alembic_config


def test_migrations_have_a_single_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    assert script.get_heads() == ["0012"]
