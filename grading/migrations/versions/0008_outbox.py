"""Many lines, one database: every record names the line that wrote it.

``line_id`` on fruit, events and quarantine (the ``[line] id`` of the writing line; "" for rows
from before this revision), and ``origin_id`` on quarantine: the row's id in the line's local
outbox, so that a forwarded quarantine row (which has no uid of its own) is a no-op when replayed.

Revision ID: 0008_outbox
Revises: 0007_trace
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_outbox"
down_revision = "0007_trace"
branch_labels = None
depends_on = None

_TABLES = ("fruit", "events", "quarantine")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("line_id", sa.String(64), nullable=False, server_default=""))
    op.add_column("quarantine", sa.Column("origin_id", sa.BigInteger(), nullable=True))
    op.create_index("ux_quarantine_line_origin", "quarantine", ["line_id", "origin_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_quarantine_line_origin", table_name="quarantine")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("origin_id")
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("line_id")
