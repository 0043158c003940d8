"""The application role gets a password from RECKON_APP_PASSWORD, when that is set.

0001 creates reckon_app without one: enough for local trust or peer authentication, but a
server that asks for a password over the network (the official postgres image asks for
scram-sha-256) lets nobody in as reckon_app without one. Unset, this changes nothing.

The password is hashed into a SCRAM verifier by libpq before it is sent, and the verifier is
quoted as a literal by psycopg: neither the plain text nor a quote in it reaches the SQL.
`reckon migrate` sets it again after every upgrade, so changing the variable rotates it.

Revision ID: 0014
Revises: 0013
"""

import os

from alembic import op

from app.settings import set_app_role_password

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    password = os.environ.get("RECKON_APP_PASSWORD", "")
    if password:
        set_app_role_password(op.get_bind().connection.dbapi_connection, password)


def downgrade() -> None:
    # A password is access, not schema: removing it would lock out a running deployment.
    pass
