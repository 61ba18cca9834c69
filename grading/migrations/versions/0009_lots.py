"""Lots with their grower, origin and recipe version; recipe versions; cartons; fruit.carton_id.

Adds columns to ``lots`` (all with defaults or nullable, so existing lots stay valid) and
``fruit.carton_id`` (nullable: fruit graded before cartons existed are in none), and the
tables ``recipe_versions``, ``active_recipes`` and ``cartons``. A partial unique index keeps
one open lot per line; if an existing database has several open lots on one line, all but
the newest are closed at their last fruit's time first.

Revision ID: 0009_lots
Revises: 0008_outbox
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_lots"
down_revision = "0008_outbox"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _add_reference(table: str, column: str, type_: sa.types.TypeEngine, sqlite_type: str, to: str, to_column: str) -> None:
    """A nullable column referring to ``to.to_column``. SQLite cannot add a constraint to a
    table, but can add a column with its REFERENCES clause; PostgreSQL gets a named constraint."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sqlite_type} REFERENCES {to} ({to_column})")
    else:
        op.add_column(table, sa.Column(column, type_, nullable=True))
        op.create_foreign_key(f"fk_{table}_{column}", table, to, [column], [to_column])


def upgrade() -> None:
    op.create_table(
        "recipe_versions",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
    )
    op.create_table(
        "active_recipes",
        sa.Column("line", sa.String(64), primary_key=True),
        sa.Column("recipe_hash", sa.String(64), sa.ForeignKey("recipe_versions.hash"), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(100), nullable=False),
    )
    # Plain ADD COLUMN (no table rebuild: SQLite would have to drop ``lots``, which ``fruit``
    # refers to); a nullable column with a REFERENCES clause is allowed there.
    op.add_column("lots", sa.Column("grower_id", sa.String(40), nullable=False, server_default=""))
    op.add_column("lots", sa.Column("origin_village", sa.String(100), nullable=False, server_default=""))
    op.add_column("lots", sa.Column("origin_plot", sa.String(100), nullable=False, server_default=""))
    op.add_column("lots", sa.Column("harvest_date", sa.Date(), nullable=True))
    op.add_column("lots", sa.Column("received_weight_kg", sa.Float(), nullable=True))
    _add_reference("lots", "recipe_hash", sa.String(64), "VARCHAR(64)", "recipe_versions", "hash")
    op.add_column("lots", sa.Column("started_by", sa.String(100), nullable=False, server_default=""))
    op.add_column("lots", sa.Column("closed_by", sa.String(100), nullable=True))
    # Older lines never closed a lot: keep the newest open one per line, close the others.
    op.execute(
        """UPDATE lots SET ended_at = COALESCE(
               (SELECT MAX(f.graded_at) FROM fruit f WHERE f.lot_id = lots.id), lots.started_at),
               closed_by = 'migration 0009_lots'
           WHERE ended_at IS NULL AND id < (
               SELECT MAX(l2.id) FROM lots l2 WHERE l2.line = lots.line AND l2.ended_at IS NULL)"""
    )
    open_only = sa.text("ended_at IS NULL")
    op.create_index(
        "uq_lots_one_open_per_line", "lots", ["line"], unique=True,
        sqlite_where=open_only, postgresql_where=open_only,
    )
    op.create_index("ix_lots_grower_started_at", "lots", ["grower", "started_at"])
    op.create_table(
        "cartons",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("outlet", sa.SmallInteger(), nullable=False),
        sa.Column("quality_class", sa.String(32), nullable=False),
        sa.Column("size_class", sa.String(32), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(100), nullable=True),
        sa.Column("fruit_count", sa.Integer(), nullable=True),
        sa.Column("fruit_weight_g", sa.Float(), nullable=True),
        sa.Column("scale_weight_g", sa.Float(), nullable=True),
        sa.Column("off_grade_count", sa.Integer(), nullable=True),
        sa.Column("compliant", sa.Boolean(), nullable=True),
        sa.Column("issues", sa.JSON(), nullable=True),
    )
    op.create_index("ix_cartons_lot_id", "cartons", ["lot_id"])
    closed_only = sa.text("closed_at IS NULL")
    op.create_index(
        "uq_cartons_one_open_per_outlet", "cartons", ["outlet", "lot_id"], unique=True,
        sqlite_where=closed_only, postgresql_where=closed_only,
    )
    _add_reference("fruit", "carton_id", _big_id, "INTEGER", "cartons", "id")
    op.create_index(
        "ix_fruit_lot_packout", "fruit",
        ["lot_id", "quality_class", "size_class", "late", "outlet", "weight_g"],
    )
    op.create_index("ix_fruit_carton_id", "fruit", ["carton_id"])


def downgrade() -> None:
    op.drop_index("ix_fruit_carton_id", "fruit")
    op.drop_index("ix_fruit_lot_packout", "fruit")
    op.drop_column("fruit", "carton_id")
    op.drop_table("cartons")
    op.drop_index("ix_lots_grower_started_at", "lots")
    op.drop_index("uq_lots_one_open_per_line", "lots")
    for column in ("closed_by", "started_by", "recipe_hash", "received_weight_kg", "harvest_date",
                   "origin_plot", "origin_village", "grower_id"):
        op.drop_column("lots", column)
    op.drop_table("active_recipes")
    op.drop_table("recipe_versions")
