"""Initial schema: lots, fruit, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("grower", sa.String(100), nullable=False, server_default=""),
        sa.Column("variety", sa.String(64), nullable=False, server_default=""),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("recipe", sa.String(200), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "fruit",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("lane", sa.SmallInteger(), nullable=False),
        sa.Column("cup_index", sa.BigInteger(), nullable=False),
        sa.Column("graded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weight_g", sa.Float(), nullable=True),
        sa.Column("diameter_major_mm", sa.Float(), nullable=False),
        sa.Column("diameter_minor_mm", sa.Float(), nullable=False),
        sa.Column("area_cm2", sa.Float(), nullable=False),
        sa.Column("volume_cm3", sa.Float(), nullable=True),
        sa.Column("colour_fractions", sa.JSON(), nullable=False),
        sa.Column("defect_count", sa.Integer(), nullable=False),
        sa.Column("defect_area_cm2", sa.Float(), nullable=False),
        sa.Column("elongation", sa.Float(), nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("views", sa.SmallInteger(), nullable=False),
        sa.Column("quality_class", sa.String(32), nullable=False),
        sa.Column("size_class", sa.String(32), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("outlet", sa.SmallInteger(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("decision_latency_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_fruit_lot_graded_at", "fruit", ["lot_id", "graded_at"])
    op.create_table(
        "events",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=True),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_at", "events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_fruit_lot_graded_at", table_name="fruit")
    op.drop_table("fruit")
    op.drop_table("lots")
