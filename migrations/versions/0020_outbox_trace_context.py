"""The outbox carries the trace context of the transaction that staged each event, and a
stopping relay can hand back every lease it holds at once.

`outbox.traceparent` (W3C trace context, NULL when tracing is off) is written by stage() and
returned by outbox_claim, so the worker continues the API request's trace when it delivers
the event. `outbox_release_worker(worker)` clears the leases of one relay (events and
channel deliveries) without charging an attempt: on a graceful stop nothing waits for a
lease to run out.

Revision ID: 0020
Revises: 0019
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

CLAIM = "outbox_claim(text, integer, double precision)"
RELEASE_WORKER = "outbox_release_worker(text)"

# (before, after, occurrences) applied to 0013's claim function.
_EDITS = (
    ("channel text, held text[]", "channel text, held text[], traceparent text", 1),
    (
        "l.attempts, l.channel, NULL::text[]",
        "l.attempts, l.channel, NULL::text[], o.traceparent",
        1,
    ),
    (
        "o.payload, o.created_at, o.attempts\n",
        "o.payload, o.created_at, o.attempts, o.traceparent\n",
        1,
    ),
    ("ELSE '{}'::text[] END\n", "ELSE '{}'::text[] END, l.traceparent\n", 1),
)

_RELEASE_WORKER_BODY = """
    CREATE FUNCTION outbox_release_worker(p_worker text)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        released integer;
        channels integer;
    BEGIN
        UPDATE outbox
           SET locked_until = NULL, locked_by = NULL, attempts = greatest(attempts - 1, 0)
         WHERE locked_by = p_worker AND status = 'pending' AND locked_until IS NOT NULL;
        GET DIAGNOSTICS released = ROW_COUNT;
        UPDATE outbox_deliveries
           SET locked_until = NULL, locked_by = NULL, attempts = greatest(attempts - 1, 0)
         WHERE locked_by = p_worker AND status = 'pending' AND locked_until IS NOT NULL;
        GET DIAGNOSTICS channels = ROW_COUNT;
        RETURN released + channels;
    END
    $$
"""


def _outbox_0013() -> ModuleType:
    path = Path(__file__).with_name("0013_outbox_channels.py")
    spec = importlib.util.spec_from_file_location("reckon_migration_0013", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def claim_with_traceparent(body: str) -> str:
    for before, after, count in _EDITS:
        if body.count(before) != count:
            raise RuntimeError(f"outbox_claim no longer has {before!r} {count} time(s)")
        body = body.replace(before, after)
    return body


def _create(signature: str, body: str) -> None:
    op.execute(body)
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO reckon_app")


def upgrade() -> None:
    op.execute("ALTER TABLE outbox ADD COLUMN traceparent text")
    # The claim's row type changes: drop and create (CREATE OR REPLACE cannot).
    op.execute(f"DROP FUNCTION {CLAIM}")
    _create(CLAIM, claim_with_traceparent(_outbox_0013()._claim_function()))
    _create(RELEASE_WORKER, _RELEASE_WORKER_BODY)
    # Leases are looked up by holder only when a relay stops; no index.


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {RELEASE_WORKER}")
    op.execute(f"DROP FUNCTION {CLAIM}")
    _create(CLAIM, _outbox_0013()._claim_function())
    op.execute("ALTER TABLE outbox DROP COLUMN traceparent")
