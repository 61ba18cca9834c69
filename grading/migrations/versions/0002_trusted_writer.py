"""Records the writer can always store: nullable measurements, event uids, a quarantine.

* The fruit table's float columns that were NOT NULL become nullable, so a NaN or infinite
  measurement is stored as NULL (with a ``non_finite:<column>`` flag) instead of refused.
* Events get a unique ``uid`` like fruit, so a replayed event batch is a no-op. Events
  written before this revision get a fresh uuid each.
* ``quarantine`` keeps every row the database refused, with its reason.
* ``fruit.frame_position_cups``: the belt position of the frame the decision was made on, so
  a benchmark can time each decision from the simulator's own exposure log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_NOW_NULLABLE = (
    "diameter_major_mm",
    "diameter_minor_mm",
    "area_cm2",
    "defect_area_cm2",
    "elongation",
    "decision_latency_ms",
)


def upgrade() -> None:
    # On SQLite each batch block rebuilds the table (copy, drop, rename) inside the migration's
    # transaction; on PostgreSQL it is a plain ALTER TABLE.
    with op.batch_alter_table("fruit") as batch:
        for name in _NOW_NULLABLE:
            batch.alter_column(name, existing_type=sa.Float(), nullable=True)
        batch.add_column(sa.Column("frame_position_cups", sa.Float(), nullable=True))

    op.add_column("events", sa.Column("uid", sa.String(36), nullable=True))
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM events WHERE uid IS NULL")).scalars().all()
    if ids:
        bind.execute(
            sa.text("UPDATE events SET uid = :uid WHERE id = :id"),
            [{"uid": str(uuid.uuid4()), "id": event_id} for event_id in ids],
        )
    with op.batch_alter_table("events") as batch:
        batch.alter_column("uid", existing_type=sa.String(36), nullable=False)
        batch.create_unique_constraint("uq_events_uid", ["uid"])

    op.create_table(
        "quarantine",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("table_name", sa.String(40), nullable=False),
        sa.Column("uid", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index("ix_quarantine_at", "quarantine", ["at"])
    op.create_index("ix_quarantine_uid", "quarantine", ["uid"])


def downgrade() -> None:
    # Fails (the database refuses it) while any fruit row holds a NULL measurement: 0001
    # cannot represent that row, and dropping it silently is not an option.
    op.drop_index("ix_quarantine_uid", table_name="quarantine")
    op.drop_index("ix_quarantine_at", table_name="quarantine")
    op.drop_table("quarantine")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_uid", type_="unique")
        batch.drop_column("uid")
    with op.batch_alter_table("fruit") as batch:
        batch.drop_column("frame_position_cups")
        for name in _NOW_NULLABLE:
            batch.alter_column(name, existing_type=sa.Float(), nullable=False)
