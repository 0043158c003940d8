"""The outbox claim leases its rows by key, never by scanning the outbox.

`outbox_claim` picks its heads (`LIMIT greatest(p_limit - owed, 0)`) and their followers, then
leases them with `UPDATE outbox ... FROM picked`. The planner cannot know how many rows that
LIMIT keeps, so it guessed a tenth of the due rows (2,722 for 200 at 40,000 due) and joined
`picked` to the outbox by hashing the whole table: a sequential scan of every row, delivered
ones included, on every claim (4 of the claim's 15 ms on 40,000 rows; more as the table grows
until the estimate flips). With hash and merge joins off inside this one function the lease is
a nested loop over the primary key: 200-400 index probes. No other join in the claim is a
hash or merge join in either world (every other one is an indexed anti-join or a LATERAL).

A later migration that re-creates `outbox_claim` (CREATE OR REPLACE drops these settings)
must keep them; `tests/outbox/test_claim_plan.py` fails otherwise.

Revision ID: 0033
Revises: 0032
"""

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

CLAIM = "outbox_claim(text, integer, double precision)"


def upgrade() -> None:
    op.execute(f"ALTER FUNCTION {CLAIM} SET enable_hashjoin = off SET enable_mergejoin = off")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {CLAIM} RESET enable_hashjoin RESET enable_mergejoin")
