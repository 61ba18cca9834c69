"""Certificates: the lots' platform 追溯码, incoming 合格证, the packing center's own certificates.

Adds ``lots.platform_trace_code`` (nullable: the platform issues it, often after receiving) and
``cartons.carried_to_lot_id`` (nullable: set on a partial carton kept open across a lot switch,
``[lots] carry_over_partial_cartons``), and the tables ``incoming_certificates`` (each grower's
承诺达标合格证 as received with a lot) and ``center_certificates`` (the certificates the packing
center issues for a carton or pallet of mixed lots). Existing rows stay valid.

Revision ID: 0012_certificates
Revises: 0011_pallets
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_certificates"
down_revision = "0011_pallets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lots", sa.Column("platform_trace_code", sa.String(128), nullable=True))
    # SQLite cannot add a constraint to a table, but can add a column with its REFERENCES clause
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE cartons ADD COLUMN carried_to_lot_id INTEGER REFERENCES lots (id)")
    else:
        op.add_column("cartons", sa.Column("carried_to_lot_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_cartons_carried_to_lot_id", "cartons", "lots", ["carried_to_lot_id"], ["id"])
    op.create_table(
        "incoming_certificates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("number", sa.String(64), nullable=False, server_default=""),
        sa.Column("issuer", sa.String(100), nullable=False),
        sa.Column("contact", sa.String(100), nullable=False, server_default=""),
        sa.Column("product_name", sa.String(64), nullable=False, server_default=""),
        sa.Column("quantity", sa.String(64), nullable=False, server_default=""),
        sa.Column("origin", sa.String(200), nullable=False, server_default=""),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("form", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.String(100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_incoming_certificates_lot_id", "incoming_certificates", ["lot_id"])
    op.create_table(
        "center_certificates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(40), nullable=False, unique=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_uid", sa.String(36), nullable=False),
        sa.Column("lot_codes", sa.JSON(), nullable=False),
        sa.Column("product_name", sa.String(64), nullable=False, server_default=""),
        sa.Column("quantity", sa.String(64), nullable=False, server_default=""),
        sa.Column("origin", sa.String(200), nullable=False, server_default=""),
        sa.Column("issuer", sa.String(100), nullable=False, server_default=""),
        sa.Column("contact", sa.String(100), nullable=False, server_default=""),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(100), nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False, server_default=""),
        sa.UniqueConstraint("subject_kind", "subject_uid", name="uq_center_certificates_subject"),
    )
    op.create_index("ix_center_certificates_issued_at", "center_certificates", ["issued_at"])


def downgrade() -> None:
    op.drop_index("ix_center_certificates_issued_at", "center_certificates")
    op.drop_table("center_certificates")
    op.drop_index("ix_incoming_certificates_lot_id", "incoming_certificates")
    op.drop_table("incoming_certificates")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_cartons_carried_to_lot_id", "cartons", type_="foreignkey")
    op.drop_column("cartons", "carried_to_lot_id")
    op.drop_column("lots", "platform_trace_code")
