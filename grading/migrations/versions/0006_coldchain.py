"""Cold chain and alarms: the alarm journal, per-minute cold-room readings, lot residence.

Creates only its own tables; refers to ``lots.id`` and nothing else.

Revision ID: 0006_coldchain
Revises: 0003_auth
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_coldchain"
down_revision = "0003_auth"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alarm_journal",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alarm_id", sa.String(160), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=False),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("user_name", sa.String(100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_alarm_journal_alarm_id_at", "alarm_journal", ["alarm_id", "at"])
    op.create_table(
        "coldroom_readings",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("room", sa.String(64), nullable=False),
        sa.Column("quantity", sa.String(80), nullable=False),
        sa.Column("minute_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("mean_value", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("out_of_band_s", sa.Float(), nullable=False, server_default="0"),
        sa.UniqueConstraint("room", "quantity", "minute_at", name="uq_coldroom_readings_minute"),
    )
    op.create_index("ix_coldroom_readings_minute_at", "coldroom_readings", ["minute_at"])
    op.create_table(
        "lot_residence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("pallet", sa.String(64), nullable=False, server_default=""),
        sa.Column("room", sa.String(64), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entered_by", sa.String(100), nullable=False),
        sa.Column("left_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_lot_residence_lot_id", "lot_residence", ["lot_id"])


def downgrade() -> None:
    op.drop_index("ix_lot_residence_lot_id", table_name="lot_residence")
    op.drop_table("lot_residence")
    op.drop_index("ix_coldroom_readings_minute_at", table_name="coldroom_readings")
    op.drop_table("coldroom_readings")
    op.drop_index("ix_alarm_journal_alarm_id_at", table_name="alarm_journal")
    op.drop_table("alarm_journal")
