"""Carton codes: each closed carton's GTIN, serial, pack date, element string and Digital Link.

Adds nullable columns to ``cartons`` (existing cartons stay uncoded) and a unique index on
the serial (several NULLs are allowed on SQLite and PostgreSQL alike).

Revision ID: 0010_carton_codes
Revises: 0009_lots
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_carton_codes"
down_revision = "0009_lots"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("gtin", sa.String(14)),
    ("serial", sa.String(20)),
    ("pack_date", sa.Date()),
    ("element_string", sa.String(120)),
    ("digital_link", sa.String(400)),
)


def upgrade() -> None:
    for name, type_ in _COLUMNS:
        op.add_column("cartons", sa.Column(name, type_, nullable=True))
    op.create_index("uq_cartons_serial", "cartons", ["serial"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_cartons_serial", "cartons")
    for name, _type in reversed(_COLUMNS):
        op.drop_column("cartons", name)
