"""Pallets: each pallet's SSCC, line, creation and shipping, and the cartons put on and taken off.

Adds the tables ``pallets`` and ``pallet_cartons`` (new tables only: nothing existing changes).
A partial unique index keeps a carton on at most one pallet at a time; membership rows are
never deleted, a removal sets ``removed_at``.

Revision ID: 0011_pallets
Revises: 0010_carton_codes
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_pallets"
down_revision = "0010_carton_codes"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pallets",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("sscc", sa.String(18), nullable=False, unique=True),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipped_by", sa.String(100), nullable=True),
        sa.Column("destination", sa.String(200), nullable=True),
    )
    op.create_index("ix_pallets_line_created_at", "pallets", ["line", "created_at"])
    op.create_table(
        "pallet_cartons",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("pallet_id", _big_id, sa.ForeignKey("pallets.id"), nullable=False),
        sa.Column("carton_id", _big_id, sa.ForeignKey("cartons.id"), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(100), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_pallet_cartons_pallet_id", "pallet_cartons", ["pallet_id"])
    current = sa.text("removed_at IS NULL")
    op.create_index(
        "uq_pallet_cartons_one_pallet_per_carton", "pallet_cartons", ["carton_id"], unique=True,
        sqlite_where=current, postgresql_where=current,
    )


def downgrade() -> None:
    op.drop_table("pallet_cartons")
    op.drop_table("pallets")
