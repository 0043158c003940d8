"""Distribute the schema on Citus: every business's rows on one node, colocated by tenant_id.

Used by migration 0031 (a fresh database on a Citus coordinator) and, for a database that
was migrated on one PostgreSQL and then restored onto a coordinator, by

    python -m app.cli.citus postgresql://postgres@coordinator:5432/reckon

Both do nothing when the `citus` extension is not installed in the database, and nothing
to a table that is already distributed, so running it twice is harmless.

- `tenants`, `inbox` and `login_emails` become reference tables (a copy on every node):
  every tenant table refers to `tenants`, the webhook inbox is keyed by the provider's event,
  not a tenant, and sign-in looks an email up before it knows the business.
- Every other table with a `tenant_id` column is hash-distributed on it, all colocated, so a
  business's bookings, payments, ledger and outbox live on the same node and every foreign
  key (all of them carry tenant_id) and every join stays on that node.
- Foreign keys of the tables being distributed are dropped first and re-added last:
  distributing a referenced table before its children would otherwise turn the children into
  local tables. Keys between tables distributed earlier are left alone, so a later migration
  that adds a table (0032's login_emails) touches only that table's keys.
- The database's sessions get `citus.propagate_set_commands = 'local'`, so the
  `SET LOCAL app.tenant_id` that row-level security reads reaches the shards, and
  `citus.enable_unsafe_triggers = on`: the ledger, refund, invoice and stock triggers only
  touch the row's own business (colocated shards on the same node).
- Every function in the public schema is created on the workers too (triggers and the
  SECURITY DEFINER doors run there).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

REFERENCE_TABLES = ("tenants", "inbox", "login_emails")
# The first distributed table anchors the colocation group the others join.
ANCHOR = "users"


@dataclass
class Distribution:
    reference: list[str] = field(default_factory=list)
    distributed: list[str] = field(default_factory=list)
    foreign_keys: int = 0
    functions: int = 0


def citus_installed(connection: Connection) -> bool:
    return bool(
        connection.execute(
            text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        ).scalar()
    )


def _already(connection: Connection) -> set[str]:
    rows = connection.execute(
        text("SELECT logicalrelid::regclass::text FROM pg_dist_partition")
    ).scalars()
    return set(rows)


def _existing(connection: Connection, tables: tuple[str, ...]) -> list[str]:
    """Those of `tables` the schema has (a table a later migration adds is not there yet)."""
    return [
        table
        for table in tables
        if connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar()
    ]


def _tenant_tables(connection: Connection) -> list[str]:
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' "
            "AND NOT a.attisdropped "
            "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace "
            "ORDER BY c.relname"
        )
    ).scalars()
    tables = [t for t in rows if t not in REFERENCE_TABLES]
    if ANCHOR in tables:
        tables.remove(ANCHOR)
        tables.insert(0, ANCHOR)
    return tables


def distribute(connection: Connection) -> Distribution:
    """Run inside the caller's transaction, as a superuser (the migration owner)."""
    done = Distribution()
    if not citus_installed(connection):
        return done
    already = _already(connection)
    reference = [t for t in _existing(connection, REFERENCE_TABLES) if t not in already]
    tenant_tables = [t for t in _tenant_tables(connection) if t not in already]
    if reference or tenant_tables:
        connection.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
        # DDL and distribution in one transaction with foreign keys between the new shards.
        connection.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
        moving = set(reference) | set(tenant_tables)
        keys = [
            (table, name, definition)
            for table, name, definition, target in connection.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), "
                    "confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
                    "AND connamespace = 'public'::regnamespace ORDER BY conrelid::regclass::text"
                )
            ).all()
            if table in moving or target in moving
        ]
        for table, name, _ in keys:
            connection.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        for table in reference:
            connection.execute(text("SELECT create_reference_table(:t)"), {"t": table})
            done.reference.append(table)
        anchor = _anchor(already)
        for table in tenant_tables:
            connection.execute(
                text("SELECT create_distributed_table(:t, 'tenant_id', colocate_with => :c)"),
                {"t": table, "c": anchor or "default"},
            )
            anchor = anchor or table
            done.distributed.append(table)
        for table, name, definition in keys:
            connection.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
        done.foreign_keys = len(keys)
    done.functions = _propagate_functions(connection)
    database = connection.execute(text("SELECT current_database()")).scalar()
    for setting, value in (
        ("citus.propagate_set_commands", "local"),
        ("citus.enable_unsafe_triggers", "on"),
    ):
        connection.execute(text(f"ALTER DATABASE \"{database}\" SET {setting} = '{value}'"))
    return done


def _anchor(already: set[str]) -> str | None:
    for table in sorted(already):
        if table not in REFERENCE_TABLES:
            return table
    return None


def _propagate_functions(connection: Connection) -> int:
    """Create the public schema's own functions (not an extension's) on every worker."""
    functions = connection.execute(
        text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = 'public'::regnamespace "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
            "                AND d.objid = p.oid AND d.deptype = 'e') "
            "AND NOT EXISTS (SELECT 1 FROM pg_dist_object o "
            "                WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid) "
            "ORDER BY 1"
        )
    ).scalars()
    count = 0
    for signature in list(functions):
        connection.execute(text("SELECT create_distributed_function(:f)"), {"f": signature})
        count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m app.cli.citus OWNER_DATABASE_URL", file=sys.stderr)
        return 2
    from app.settings import normalise_database_url

    engine = create_engine(normalise_database_url(argv[0]))
    with engine.begin() as connection:
        if not citus_installed(connection):
            print("the citus extension is not installed in this database: nothing to do")
            return 1
        done = distribute(connection)
    engine.dispose()
    print(
        f"reference tables: {', '.join(done.reference) or '-'}\n"
        f"distributed on tenant_id: {len(done.distributed)} tables\n"
        f"foreign keys re-added: {done.foreign_keys}\n"
        f"functions created on the workers: {done.functions}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
