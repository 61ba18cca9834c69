"""The database schema: SQLAlchemy Core tables shared by SQLite and PostgreSQL.

Alembic migrations in ``grading/migrations`` create exactly these tables; a test checks that
the migrated database and this metadata agree.

Measurement columns are nullable: a value the camera or scale produced as NaN or infinity is
stored as NULL with a ``non_finite:<column>`` flag rather than refused (``grading.store``).
Rows the database still refuses land in ``quarantine`` with the database's reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
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
    UniqueConstraint,
)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A time read back from a ``DateTime(timezone=True)`` column, in UTC with its zone: SQLite
    hands it back naive (every time is written in UTC), PostgreSQL in the session's zone."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    # migration 0009_lots: who grew it and where, what came in, the exact recipe it is graded by
    Column("grower_id", String(40), nullable=False, server_default=""),
    Column("origin_village", String(100), nullable=False, server_default=""),
    Column("origin_plot", String(100), nullable=False, server_default=""),
    Column("harvest_date", Date, nullable=True),
    Column("received_weight_kg", Float, nullable=True),
    Column("recipe_hash", String(64), ForeignKey("recipe_versions.hash"), nullable=True),
    Column("started_by", String(100), nullable=False, server_default=""),
    Column("closed_by", String(100), nullable=True),
    # migration 0012_certificates: the national platform's 追溯码, opaque (its structure is not
    # public: stored as given, trimmed; never computed here)
    Column("platform_trace_code", String(128), nullable=True),
)
# One open lot per line: the database itself refuses a second.
Index(
    "uq_lots_one_open_per_line", lots.c.line, unique=True,
    sqlite_where=lots.c.ended_at.is_(None), postgresql_where=lots.c.ended_at.is_(None),
)
Index("ix_lots_grower_started_at", lots.c.grower, lots.c.started_at)

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
    Column("diameter_major_mm", Float, nullable=True),
    Column("diameter_minor_mm", Float, nullable=True),
    Column("area_cm2", Float, nullable=True),
    Column("volume_cm3", Float, nullable=True),
    Column("colour_fractions", JSON, nullable=False),
    Column("defect_count", Integer, nullable=False),
    Column("defect_area_cm2", Float, nullable=True),
    Column("elongation", Float, nullable=True),
    Column("quality_score", Float, nullable=True),
    Column("flags", JSON, nullable=False),
    Column("views", SmallInteger, nullable=False),
    Column("quality_class", String(32), nullable=False),
    Column("size_class", String(32), nullable=True),
    Column("reasons", JSON, nullable=False),
    Column("outlet", SmallInteger, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("decision_latency_ms", Float, nullable=True),
    # belt position of the frame the decision was made on (its camera trigger's position)
    Column("frame_position_cups", Float, nullable=True),
    # the [line] id of the line that wrote it (several lines may share one database; 0008_outbox)
    Column("line_id", String(64), nullable=False, server_default=""),
    # migration 0009_lots: the carton it went in (None: late, recirculated, or not a packing outlet)
    Column("carton_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("cartons.id"), nullable=True),
)
Index("ix_fruit_lot_graded_at", fruit.c.lot_id, fruit.c.graded_at)
# The pack-out's GROUP BY reads only this index, never the rows (docs/benchmarks.md).
Index(
    "ix_fruit_lot_packout", fruit.c.lot_id, fruit.c.quality_class, fruit.c.size_class, fruit.c.late,
    fruit.c.outlet, fruit.c.weight_g,
)
Index("ix_fruit_carton_id", fruit.c.carton_id)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # Written by the line, like fruit.uid: a replayed event batch is a no-op.
    Column("uid", String(36), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("lot_id", Integer, ForeignKey("lots.id"), nullable=True),
    Column("message", Text, nullable=False, server_default=""),
    Column("payload", JSON, nullable=False),
    Column("line_id", String(64), nullable=False, server_default=""),
    UniqueConstraint("uid", name="uq_events_uid"),
)
Index("ix_events_at", events.c.at)

# Rows the database refused, kept with its reason so none is dropped silently. ``payload`` is
# the row as JSON text (not a JSON column): it must store whatever the refused row held.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("table_name", String(40), nullable=False),
    # Text, not String(36): a uid too long for its own table must still fit here.
    Column("uid", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("line_id", String(64), nullable=False, server_default=""),
    # its id in the writing line's local outbox, set when forwarded: a replay is a no-op (0008_outbox)
    Column("origin_id", BigInteger, nullable=True),
)
Index("ix_quarantine_at", quarantine.c.at)
Index("ux_quarantine_line_origin", quarantine.c.line_id, quarantine.c.origin_id, unique=True)
Index("ix_quarantine_uid", quarantine.c.uid)

# --------------------------------------------------------------------------------------------
# Access and audit (migration 0003_auth): people, API tokens, HMI sessions, failed PIN entries
# and the append-only audit log. Kept in one block, apart from the line's records above, and
# referring to nothing outside it, so the migration that creates it stands on its own.

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # "scrypt$n$r$p$salt$hash" (base64): the parameters travel with the hash so they can be raised later
    Column("pin_hash", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # wrong PINs in a row; counted before the PIN is checked, so parallel guesses cannot overrun the limit
    Column("failed_pins", Integer, nullable=False, server_default="0"),
    Column("locked_at", DateTime(timezone=True), nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # SHA-256 of the token: tokens are 256 random bits, so a fast hash is enough and a lookup is one index probe
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    # SHA-256 of the cookie's secret: a copy of the database does not hand out live sessions
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("client_address", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
Index("ix_auth_sessions_user_id", auth_sessions.c.user_id)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("client_address", String(64), nullable=False),
)
Index("ix_login_failures_client_address_at", login_failures.c.client_address, login_failures.c.at)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_kind", String(16), nullable=False),  # user, token, public, cli
    Column("actor", String(100), nullable=False),
    Column("role", String(16), nullable=True),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=True),
    Column("outcome", String(16), nullable=False),  # ok, refused
    Column("client_address", String(64), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("detail", Text, nullable=False, server_default=""),
)
Index("ix_audit_log_at", audit_log.c.at)

# --------------------------------------------------------------------------------------------
# Cold chain and alarms (migration 0006_coldchain): the alarm journal (every transition of every
# alarm, whatever its source), cold-room readings downsampled to one row per minute and
# quantity, and lots' (or pallets') residence in the rooms. Refers only to ``lots.id``.

alarm_journal = Table(
    "alarm_journal",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("alarm_id", String(160), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("cause", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("user_name", String(100), nullable=True),
    Column("reason", Text, nullable=False, server_default=""),
)
Index("ix_alarm_journal_alarm_id_at", alarm_journal.c.alarm_id, alarm_journal.c.at)

coldroom_readings = Table(
    "coldroom_readings",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("room", String(64), nullable=False),
    # temperature, humidity (a ratio) or core:<probe sensor name>
    Column("quantity", String(80), nullable=False),
    Column("minute_at", DateTime(timezone=True), nullable=False),  # start of the minute, UTC
    Column("min_value", Float, nullable=False),
    Column("max_value", Float, nullable=False),
    Column("mean_value", Float, nullable=False),
    Column("samples", Integer, nullable=False),
    # seconds of this minute the value was outside the room's band in force then (temperature only)
    Column("out_of_band_s", Float, nullable=False, server_default="0"),
    UniqueConstraint("room", "quantity", "minute_at", name="uq_coldroom_readings_minute"),
)
Index("ix_coldroom_readings_minute_at", coldroom_readings.c.minute_at)

lot_residence = Table(
    "lot_residence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lot_id", Integer, ForeignKey("lots.id"), nullable=False),
    Column("pallet", String(64), nullable=False, server_default=""),  # "" = the whole lot
    Column("room", String(64), nullable=False),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("left_at", DateTime(timezone=True), nullable=True),
    Column("entered_by", String(100), nullable=False),
    Column("left_by", String(100), nullable=True),
)
Index("ix_lot_residence_lot_id", lot_residence.c.lot_id)

# Durable counters (grading.trace.serials): a carton serial or SSCC serial reference is taken
# from here in a committed transaction before any label shows it, so none is used twice.
trace_counters = Table(
    "trace_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

# Lots, recipes and cartons (migration 0009_lots): the exact recipe text each lot is graded
# by, which recipe a line runs next, and cartons. ``fruit.carton_id`` and the new ``lots``
# columns are above, with their tables.

recipe_versions = Table(
    "recipe_versions",
    metadata,
    # SHA-256 of the recipe's text as loaded: the same text is one version, whoever stores it
    Column("hash", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("product", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100), nullable=False, server_default=""),
)

active_recipes = Table(
    "active_recipes",
    metadata,
    Column("line", String(64), primary_key=True),
    Column("recipe_hash", String(64), ForeignKey("recipe_versions.hash"), nullable=False),
    Column("activated_at", DateTime(timezone=True), nullable=False),
    Column("activated_by", String(100), nullable=False),
)

cartons = Table(
    "cartons",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # unique across lines: the key a line's outbox forwards it by (fruit.carton_id follows it)
    Column("uid", String(36), nullable=False, unique=True),
    Column("lot_id", Integer, ForeignKey("lots.id"), nullable=False),
    Column("outlet", SmallInteger, nullable=False),
    Column("quality_class", String(32), nullable=False),  # the class the outlet packs
    Column("size_class", String(32), nullable=True),  # None: the outlet takes any size
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(100), nullable=True),  # a person, a token, "plc" or "lot close"
    # filled in at close, from its fruit rows (grading.lots.cartons)
    Column("fruit_count", Integer, nullable=True),
    Column("fruit_weight_g", Float, nullable=True),
    Column("scale_weight_g", Float, nullable=True),  # a carton scale's reading, where one is configured
    Column("off_grade_count", Integer, nullable=True),
    Column("compliant", Boolean, nullable=True),
    Column("issues", JSON, nullable=True),
    # migration 0010_carton_codes: its GS1 identity, given at close when the line has [trace]
    # (grading.trace.carton_codes); null for an uncoded carton (no [trace], or empty)
    Column("gtin", String(14), nullable=True),
    Column("serial", String(20), nullable=True),  # AI (21), from the line's durable counter
    Column("pack_date", Date, nullable=True),  # AI (13)
    Column("element_string", String(120), nullable=True),  # unbracketed, GS (ASCII 29) separators
    Column("digital_link", String(400), nullable=True),
    # migration 0012_certificates: a partial carton kept open across a lot switch ([lots]
    # carry_over_partial_cartons) names the lot it was carried into; ``lot_id`` stays the lot it
    # was opened for, and its lots are the distinct lots of its fruit rows
    Column("carried_to_lot_id", Integer, ForeignKey("lots.id"), nullable=True),
)
Index("ix_cartons_lot_id", cartons.c.lot_id)
# a serial is never given twice (serials carry the line's id, so this holds across lines too)
Index("uq_cartons_serial", cartons.c.serial, unique=True)
Index(
    "uq_cartons_one_open_per_outlet", cartons.c.outlet, cartons.c.lot_id, unique=True,
    sqlite_where=cartons.c.closed_at.is_(None), postgresql_where=cartons.c.closed_at.is_(None),
)

# Pallets (migration 0011_pallets): pallets with their SSCC, and which cartons are on them.
# A membership row is never deleted: taking a carton off sets ``removed_at``, so the history of
# every pallet (and the EPCIS AggregationEvents built from it) survives; a carton is on at most
# one pallet at a time (the partial unique index). Both forward by ``uid`` (grading.outbox).

pallets = Table(
    "pallets",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("uid", String(36), nullable=False, unique=True),
    # SSCC-18 (AI 00): extension digit, company prefix, line digit + durable counter, check digit
    Column("sscc", String(18), nullable=False, unique=True),
    Column("line", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("shipped_at", DateTime(timezone=True), nullable=True),
    Column("shipped_by", String(100), nullable=True),
    Column("destination", String(200), nullable=True),
)
Index("ix_pallets_line_created_at", pallets.c.line, pallets.c.created_at)

pallet_cartons = Table(
    "pallet_cartons",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("uid", String(36), nullable=False, unique=True),
    Column("pallet_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("pallets.id"), nullable=False),
    Column("carton_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("cartons.id"), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("added_by", String(100), nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=True),
    Column("removed_by", String(100), nullable=True),
)
Index("ix_pallet_cartons_pallet_id", pallet_cartons.c.pallet_id)
Index(
    "uq_pallet_cartons_one_pallet_per_carton", pallet_cartons.c.carton_id, unique=True,
    sqlite_where=pallet_cartons.c.removed_at.is_(None), postgresql_where=pallet_cartons.c.removed_at.is_(None),
)

# Certificates (migration 0012_certificates): each grower's 承诺达标合格证 as received with a lot,
# and the certificates the packing center issues itself for a carton or pallet of mixed lots
# (grading.trace.certificates; docs/traceability.md).

incoming_certificates = Table(
    "incoming_certificates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(36), nullable=False, unique=True),  # the key the outbox forwards it by
    Column("lot_id", Integer, ForeignKey("lots.id"), nullable=False),
    Column("number", String(64), nullable=False, server_default=""),  # as printed on it, if any
    Column("issuer", String(100), nullable=False),  # 承诺主体
    Column("contact", String(100), nullable=False, server_default=""),  # 联系方式
    Column("product_name", String(64), nullable=False, server_default=""),  # 产品名称
    Column("quantity", String(64), nullable=False, server_default=""),  # 数量, as written
    Column("origin", String(200), nullable=False, server_default=""),  # 产地
    Column("issued_on", Date, nullable=True),  # 开具时间 (a date)
    Column("form", String(16), nullable=False),  # paper, electronic, handwritten
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("received_by", String(100), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
)
Index("ix_incoming_certificates_lot_id", incoming_certificates.c.lot_id)

center_certificates = Table(
    "center_certificates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # from the line's durable counter (trace_counters), the line's id inside: never given twice
    Column("number", String(40), nullable=False, unique=True),
    Column("subject_kind", String(16), nullable=False),  # carton, pallet
    Column("subject_uid", String(36), nullable=False),  # cartons.uid (or the pallet's)
    Column("lot_codes", JSON, nullable=False),  # the contributing grower lots, in order of first fruit
    Column("product_name", String(64), nullable=False, server_default=""),
    Column("quantity", String(64), nullable=False, server_default=""),
    Column("origin", String(200), nullable=False, server_default=""),
    Column("issuer", String(100), nullable=False, server_default=""),
    Column("contact", String(100), nullable=False, server_default=""),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("issued_by", String(100), nullable=False),
    Column("line_id", String(64), nullable=False, server_default=""),
    UniqueConstraint("subject_kind", "subject_uid", name="uq_center_certificates_subject"),
)
Index("ix_center_certificates_issued_at", center_certificates.c.issued_at)
