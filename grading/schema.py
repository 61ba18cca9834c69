"""The database schema: SQLAlchemy Core tables shared by SQLite and PostgreSQL.

Alembic migrations in ``grading/migrations`` create exactly these tables; a test checks that
the migrated database and this metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

lots = Table(
    "lots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("grower", String(100), nullable=False, server_default=""),
    Column("variety", String(64), nullable=False, server_default=""),
    Column("product", String(32), nullable=False),
    Column("recipe", String(200), nullable=False),
    Column("line", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)

fruit = Table(
    "fruit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # Written by the line; unique so that a replayed batch (e.g. after a forwarder retry) never doubles.
    Column("uid", String(36), nullable=False, unique=True),
    Column("lot_id", Integer, ForeignKey("lots.id"), nullable=False),
    Column("lane", SmallInteger, nullable=False),
    Column("cup_index", BigInteger, nullable=False),
    Column("graded_at", DateTime(timezone=True), nullable=False),
    Column("weight_g", Float, nullable=True),
    Column("diameter_major_mm", Float, nullable=False),
    Column("diameter_minor_mm", Float, nullable=False),
    Column("area_cm2", Float, nullable=False),
    Column("volume_cm3", Float, nullable=True),
    Column("colour_fractions", JSON, nullable=False),
    Column("defect_count", Integer, nullable=False),
    Column("defect_area_cm2", Float, nullable=False),
    Column("elongation", Float, nullable=False),
    Column("quality_score", Float, nullable=True),
    Column("flags", JSON, nullable=False),
    Column("views", SmallInteger, nullable=False),
    Column("quality_class", String(32), nullable=False),
    Column("size_class", String(32), nullable=True),
    Column("reasons", JSON, nullable=False),
    Column("outlet", SmallInteger, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("decision_latency_ms", Float, nullable=False),
)
Index("ix_fruit_lot_graded_at", fruit.c.lot_id, fruit.c.graded_at)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("lot_id", Integer, ForeignKey("lots.id"), nullable=True),
    Column("message", Text, nullable=False, server_default=""),
    Column("payload", JSON, nullable=False),
)
Index("ix_events_at", events.c.at)
