"""Traceability: the durable counters carton serials and SSCC serial references come from.

Self-contained: one new table, no column of another revision.

Revision ID: 0007_trace
Revises: 0006_coldchain
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_trace"
down_revision = "0006_coldchain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trace_counters")
