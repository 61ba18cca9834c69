"""Store and forward: the line's local SQLite store as an outbox, replicated to a central database.

A line configured with ``[database] outbox`` commits every record to its local SQLite file first
(the ``RecordWriter`` is unchanged: group commit, quarantine, NaN handling, and the PLC is told
only after the local commit). This module owns what happens to those rows afterwards:

* ``install_outbox`` adds, to the local database only, the ``outbox_changes`` journal and, for
  every table in the registry, triggers that append ``(table, row id)`` to the journal in the
  same transaction as the insert or update. A row committed locally is therefore also queued.
* ``Forwarder`` is a thread that reads the journal in order, copies the rows' current values to
  the central database in one transaction per batch (an upsert on each table's natural key, so a
  replay after a crash or a lost acknowledgement is a no-op), and deletes the journal entries
  only after the central commit. While the central database is unreachable it retries with
  backoff and the journal grows; nothing on the line waits for it.

The registry (``FORWARDED``) says, per table, which columns identify a row across databases
(its natural key, e.g. ``uid``), which columns refer to another table by local id (translated
through that table's natural key, because local and central ids differ), and which columns a
later local update may change centrally. Tables are forwarded in registry order within a batch,
so a referenced table comes first. Not forwarded: ``trace_counters`` (each line allocates its
own serials, ``grading.trace.serials``), users, tokens and sessions (per line).

Not owned here: what a row means (``grading.store``), where health is shown (the API reads
``Forwarder.health()``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from drivers.health import Backoff, FaultState, HealthState
from grading.schema import (
    cartons,
    center_certificates,
    coldroom_readings,
    events,
    fruit,
    incoming_certificates,
    lots,
    pallet_cartons,
    pallets,
    quarantine,
    recipe_versions,
)
from grading.store import (
    StoreError,
    _describe,
    _payload_json,
    _refused_by_row,
    _safe_text,
    _write_transaction,
    migrate,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwardedTable:
    """How rows of ``table`` are forwarded.

    ``key``: the columns that identify a row in every database (a unique constraint on each).
    ``references``: column -> (referenced table, its key column), for columns holding a local id.
    ``update``: columns a later local change may change centrally; None = every column outside
    the key and the id (a correction of a fruit record reaches the central row); () = insert
    only, a conflicting central row is left as it is.
    ``origin_id``: for a table without a natural key of its own, the column that receives the
    row's local id (with the line id it is then the key, e.g. quarantine's).

    The table needs a one-column integer primary key (the journal names rows by it; the central
    database numbers its own) and a unique constraint or index on ``key`` in both databases.
    """

    table: Table
    key: tuple[str, ...]
    references: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    update: tuple[str, ...] | None = None
    origin_id: str | None = None

    def __post_init__(self) -> None:
        named = (*self.key, *self.references, *(self.update or ()), *((self.origin_id,) if self.origin_id else ()))
        missing = [c for c in named if c not in self.table.c]
        if missing:
            raise ValueError(f"{self.table.name}: no column {', '.join(missing)}")
        if len(self.table.primary_key.columns) != 1:
            raise ValueError(f"{self.table.name}: needs a one-column primary key to be forwarded")

    @property
    def name(self) -> str:
        return self.table.name

    def update_columns(self) -> tuple[str, ...]:
        if self.update is not None:
            return self.update
        return tuple(c.name for c in self.table.c if c.name not in self.key and not c.primary_key)


class ForwardRegistry:
    """The tables a line forwards, in the order they are written within a batch."""

    def __init__(self, tables: Iterable[ForwardedTable] = ()) -> None:
        self._tables: dict[str, ForwardedTable] = {}
        for entry in tables:
            self.register(entry)

    def register(self, entry: ForwardedTable) -> None:
        """Add ``entry`` after the tables already registered (so it may refer to them)."""
        if entry.name in self._tables:
            raise ValueError(f"table {entry.name} is registered already")
        for column, (ref_table, _ref_key) in entry.references.items():
            if ref_table not in self._tables:
                raise ValueError(f"{entry.name}.{column} refers to {ref_table}, which must be registered first")
        self._tables[entry.name] = entry

    def __iter__(self) -> Iterator[ForwardedTable]:
        return iter(self._tables.values())

    def __getitem__(self, name: str) -> ForwardedTable:
        return self._tables[name]

    def names(self) -> list[str]:
        return list(self._tables)


# The registry of the line's records. New tables register here, after what they refer to.
FORWARDED = ForwardRegistry(
    [
        # A lot code is global: two lines grading one lot share its central row.
        # a recipe version is its text's hash (its primary key, text in SQLite's row_id: insert only)
        ForwardedTable(recipe_versions, key=("hash",), update=()),
        # the platform's 追溯码 is often set after receiving: a later local change reaches the central row
        ForwardedTable(lots, key=("code",), update=("ended_at", "platform_trace_code")),
        # a carton's close (count, weight, compliance) reaches the central row as an update
        ForwardedTable(
            cartons, key=("uid",), references={"lot_id": ("lots", "code"), "carried_to_lot_id": ("lots", "code")}
        ),
        ForwardedTable(events, key=("uid",), references={"lot_id": ("lots", "code")}),
        ForwardedTable(
            fruit, key=("uid",), references={"lot_id": ("lots", "code"), "carton_id": ("cartons", "uid")}
        ),
        # shipping (and its destination) reaches the central row as an update; a membership's
        # removal likewise. Pallets come before their memberships, cartons before both.
        ForwardedTable(pallets, key=("uid",), update=("shipped_at", "shipped_by", "destination")),
        ForwardedTable(
            pallet_cartons, key=("uid",), references={"pallet_id": ("pallets", "uid"), "carton_id": ("cartons", "uid")},
            update=("removed_at", "removed_by"),
        ),
        ForwardedTable(quarantine, key=("line_id", "origin_id"), update=(), origin_id="origin_id"),
        # one row per room, quantity and minute, updated while its minute lasts
        ForwardedTable(coldroom_readings, key=("room", "quantity", "minute_at")),
        # certificates are written once: a received 合格证 as recorded, the center's as issued
        # (after the cartons, so the central database never has a certificate of an unknown carton)
        ForwardedTable(incoming_certificates, key=("uid",), references={"lot_id": ("lots", "code")}, update=()),
        ForwardedTable(center_certificates, key=("number",), update=()),
    ]
)

# --- the local journal -------------------------------------------------------------------------

_journal_metadata = MetaData()
outbox_changes = Table(
    "outbox_changes",
    _journal_metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("row_id", Integer, nullable=False),
    Column("queued_at_s", Float, nullable=False),  # wall clock, Unix seconds (for the backlog's age)
    sqlite_autoincrement=True,  # seq never reused, so the journal's order is the commit order
)

_NOW_UNIX_S = "(julianday('now') - 2440587.5) * 86400.0"


def install_outbox(engine: Engine, registry: ForwardRegistry = FORWARDED) -> None:
    """Create the journal and its triggers in the local SQLite database (idempotent). When the
    journal is new, every row already in a registered table is queued (in registry, then id order)."""
    if engine.dialect.name != "sqlite":
        raise StoreError(f"the outbox must be a local SQLite database, not {engine.dialect.name}")
    with engine.begin() as conn:
        new = not engine.dialect.has_table(conn, outbox_changes.name)
    _journal_metadata.create_all(engine)
    with engine.begin() as conn:
        if new:  # a store that becomes an outbox: what it holds already is forwarded too, first
            for entry in registry:
                pk = _primary_key(entry.table)
                conn.exec_driver_sql(
                    f"INSERT INTO outbox_changes (table_name, row_id, queued_at_s) "
                    f'SELECT \'{entry.name}\', "{pk}", {_NOW_UNIX_S} FROM "{entry.name}" ORDER BY "{pk}"'
                )
        for entry in registry:
            pk = _primary_key(entry.table)
            for op in ("INSERT", "UPDATE"):
                conn.exec_driver_sql(
                    f'CREATE TRIGGER IF NOT EXISTS "outbox_{entry.name}_{op.lower()}" AFTER {op} ON "{entry.name}" '
                    f"BEGIN INSERT INTO outbox_changes (table_name, row_id, queued_at_s) "
                    f"VALUES ('{entry.name}', NEW.\"{pk}\", {_NOW_UNIX_S}); END"
                )


def _relaxed_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _primary_key(table: Table) -> str:
    (pk,) = table.primary_key.columns
    return str(pk.name)


# --- the forwarder -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    """What /metrics and the line status show of the outbox."""

    depth: int  # journal entries not yet forwarded
    oldest_age_s: float  # age of the oldest of them; 0.0 when empty
    forwarded_total: int  # rows written to the central database since start
    state: HealthState  # "down" while the central database is unreachable
    last_error: str | None
    last_forwarded_s: float | None  # wall clock of the last central commit


class Forwarder:
    """Copies the local journal's rows to ``central`` in journal order, from one thread.

    A batch is up to ``batch_size`` journal entries, written in one central transaction and
    removed from the journal only after it committed. The central schema is migrated on the
    first connection. ``wall_clock`` gives the journal's ages; ``clock`` the backoff.
    """

    def __init__(
        self,
        local: Engine,
        central: Engine,
        *,
        registry: ForwardRegistry = FORWARDED,
        batch_size: int = 500,
        idle_poll_s: float = 0.5,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if central.dialect.name == "sqlite":
            self._insert: Callable[..., Any] = sqlite_insert
        elif central.dialect.name == "postgresql":
            self._insert = postgresql_insert
        else:
            raise StoreError(f"the forwarder supports SQLite and PostgreSQL, not {central.dialect.name}")
        self._local = local
        # The journal's deletes go through their own connection without an fsync per commit: a
        # delete lost in a power cut only sends those rows again (a no-op), and the writer's
        # commits (which do wait for the disk) then hold the write lock the shortest time.
        self._journal = create_engine(local.url, connect_args={"check_same_thread": False, "timeout": 30.0})
        event.listen(self._journal, "connect", _relaxed_sqlite)
        self._central = central
        self._registry = registry
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._wall_clock = wall_clock
        self._backoff = Backoff(retry_initial_s, retry_max_s, clock=clock)
        self._fault = FaultState(
            "central database", clock=clock, consequence="records wait in the local outbox and are forwarded later",
            logger=log,
        )
        self._cond = threading.Condition()
        self._stopping = False
        self._migrated = False
        self._thread: threading.Thread | None = None
        self.forwarded_total = 0
        self._last_forwarded_s: float | None = None
        self._depth = 0
        self._oldest_queued_s: float | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                raise StoreError("forwarder already started")
            self._thread = threading.Thread(target=self._run, name="gradeline-forwarder", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the journal now rather than at the next poll."""
        with self._cond:
            self._cond.notify_all()

    def close(self, drain_timeout_s: float = 0.0) -> None:
        """Stop the thread, after forwarding for at most ``drain_timeout_s`` what is queued.
        What is still queued stays in the journal and is forwarded after the next start."""
        deadline = time.monotonic() + drain_timeout_s
        while drain_timeout_s > 0 and time.monotonic() < deadline and self.depth() > 0:
            self.wake()
            time.sleep(0.05)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(30.0)
            self._thread = None
        self._journal.dispose()

    def depth(self) -> int:
        """Journal entries not yet forwarded, counted now."""
        with self._local.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox_changes)).scalar_one())

    def health(self) -> OutboxHealth:
        """The backlog as the forwarder thread last counted it (at most about a second old), so
        that a status page never runs a query on the caller's thread."""
        with self._cond:
            depth, oldest = self._depth, self._oldest_queued_s
        age_s = 0.0 if oldest is None else max(0.0, self._wall_clock() - oldest)
        return OutboxHealth(
            depth=depth, oldest_age_s=age_s, forwarded_total=self.forwarded_total, state=self._fault.state,
            last_error=self._fault.last_error, last_forwarded_s=self._last_forwarded_s,
        )

    def _refresh(self) -> None:
        try:
            with self._local.connect() as conn:
                depth, oldest = conn.execute(
                    select(func.count(), func.min(outbox_changes.c.queued_at_s)).select_from(outbox_changes)
                ).one()
        except Exception as exc:  # the local file is the line's own store: its writer reports it
            log.debug("outbox: cannot count the journal", exc_info=exc)
            return
        with self._cond:
            self._depth, self._oldest_queued_s = int(depth), None if oldest is None else float(oldest)

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._refresh()
            with self._cond:
                if self._stopping:
                    return
            try:
                moved = self.forward_once()
            except Exception as exc:
                self._fault.fault(f"{type(exc).__name__}: {exc}".splitlines()[0])
                log.debug("outbox: forwarding failed, retrying in %.2f s", self._backoff.delay_s, exc_info=exc)
                self._backoff.failed()
                while True:
                    with self._cond:
                        if self._stopping or self._backoff.ready():
                            break
                        self._cond.wait(min(1.0, self._backoff.wait_s()))
                    self._refresh()  # the backlog keeps growing while the central database is away
                continue
            self._backoff.succeeded()
            self._fault.ok()
            if moved == 0:
                with self._cond:
                    if not self._stopping:
                        self._cond.wait(self._idle_poll_s)

    def forward_once(self) -> int:
        """Forward one batch of the journal; the number of journal entries it cleared."""
        if not self._migrated:
            migrate(self._central)
            self._migrated = True
        with self._local.connect() as conn:
            changes = conn.execute(
                select(outbox_changes.c.seq, outbox_changes.c.table_name, outbox_changes.c.row_id)
                .order_by(outbox_changes.c.seq)
                .limit(self._batch_size)
            ).all()
        if not changes:
            return 0
        wanted: dict[str, dict[int, None]] = {}  # ordered sets
        for _seq, table_name, row_id in changes:
            wanted.setdefault(table_name, {})[row_id] = None
        rows = self._read_local(wanted)
        forwarded = 0
        refused: list[_Refused] = []
        with _write_transaction(self._central) as central:
            for entry in self._registry:
                table_rows = rows.get(entry.name)
                if table_rows:
                    forwarded += self._upsert(central, entry, table_rows, refused)
            if refused:
                self._quarantine(central, refused)
        last_seq = changes[-1][0]
        with self._journal.begin() as conn:
            conn.execute(delete(outbox_changes).where(outbox_changes.c.seq <= last_seq))
        self.forwarded_total += forwarded
        self._last_forwarded_s = self._wall_clock()
        return len(changes)

    def _read_local(self, wanted: Mapping[str, Iterable[int]]) -> dict[str, list[dict[str, Any]]]:
        """The current local values of the wanted rows, in id order, references made natural keys."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self._local.connect() as conn:
            for name, ids in wanted.items():
                try:
                    entry = self._registry[name]
                except KeyError:
                    log.warning("outbox: journal names table %s, which is not registered; skipped", name)
                    continue
                table = entry.table
                pk = table.c[_primary_key(table)]
                ids = list(ids)
                found: list[dict[str, Any]] = []
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    found += [dict(r) for r in conn.execute(select(table).where(pk.in_(chunk)).order_by(pk)).mappings()]
                for column, (ref_name, ref_key) in entry.references.items():
                    ref = self._registry[ref_name].table
                    local_ids = {r[column] for r in found if r[column] is not None}
                    keys = dict(
                        conn.execute(
                            select(ref.c[_primary_key(ref)], ref.c[ref_key]).where(ref.c[_primary_key(ref)].in_(local_ids))
                        ).all()
                    ) if local_ids else {}
                    for r in found:
                        r[column] = None if r[column] is None else _Ref(ref_name, ref_key, keys[r[column]])
                out[name] = [_aware(table, r) for r in found]
        return out

    def _upsert(self, central: Connection, entry: ForwardedTable, rows: list[dict[str, Any]], refused: list[_Refused]) -> int:
        """Upsert ``rows`` of ``entry``; a row the central database refuses is bisected out into
        ``refused`` (under savepoints, in this transaction) so it never blocks the rows after it."""
        table = entry.table
        pk = _primary_key(table)
        resolved: dict[tuple[str, str, Any], Any] = {}
        ready: list[dict[str, Any]] = []
        for r in rows:
            missing = None
            for column, value in list(r.items()):
                if isinstance(value, _Ref):
                    ident = (value.table, value.key, value.value)
                    if ident not in resolved:
                        ref = self._registry[value.table].table
                        resolved[ident] = central.execute(
                            select(ref.c[_primary_key(ref)]).where(ref.c[value.key] == value.value)
                        ).scalar_one_or_none()
                    if resolved[ident] is None:
                        missing = f"its {value.table} row {value.key}={value.value!r} is not in the central database"
                    r[column] = resolved[ident]
            if entry.origin_id is not None:
                r[entry.origin_id] = r[pk]
            if pk not in entry.key:
                del r[pk]  # the central database numbers its own rows (unless the key is the id itself)
            if missing is not None:
                refused.append(_Refused(entry.name, r, missing))
            else:
                ready.append(r)
        statement = self._insert(table)
        updates = entry.update_columns()
        if updates:
            # only a row of the same line is updated: another line's row is never overwritten
            same_line = table.c.line_id == statement.excluded.line_id if "line_id" in table.c else None
            statement = statement.on_conflict_do_update(
                index_elements=list(entry.key), set_={c: statement.excluded[c] for c in updates}, where=same_line
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(entry.key))
        return self._isolating(central, entry.name, statement, ready, refused)

    def _isolating(
        self, central: Connection, name: str, statement: Any, rows: list[dict[str, Any]], refused: list[_Refused]
    ) -> int:
        if not rows:
            return 0
        try:
            with central.begin_nested():
                central.execute(statement, rows)
        except Exception as exc:
            if not _refused_by_row(exc):
                raise
            if len(rows) == 1:
                refused.append(_Refused(name, rows[0], f"central database refused it: {_describe(exc)}"))
                return 0
            mid = len(rows) // 2
            return self._isolating(central, name, statement, rows[:mid], refused) + self._isolating(
                central, name, statement, rows[mid:], refused
            )
        return len(rows)

    def _quarantine(self, central: Connection, refused: list[_Refused]) -> None:
        """Keep refused rows in the central quarantine, once each (a replay finds them there)."""
        at = datetime.now(UTC)
        for item in refused:
            uid = item.row.get("uid")
            uid_text = None if uid is None else _safe_text(str(uid))
            line_id = str(item.row.get("line_id") or "")
            log.error("outbox: %s row %s not forwarded: %s", item.table_name, uid_text, item.reason)
            self._fault.error(f"{item.table_name} row {uid_text} not forwarded: {item.reason}")
            there = central.execute(
                select(func.count()).select_from(quarantine).where(
                    quarantine.c.table_name == item.table_name, quarantine.c.uid == uid_text,
                    quarantine.c.line_id == line_id, quarantine.c.origin_id.is_(None),
                )
            ).scalar_one()
            if there:
                continue
            central.execute(
                insert(quarantine).values(
                    at=at, table_name=item.table_name, uid=uid_text, reason=_safe_text(item.reason),
                    payload=_payload_json(item.row), line_id=line_id,
                )
            )


@dataclass(frozen=True, slots=True)
class _Refused:
    table_name: str
    row: dict[str, Any]
    reason: str


@dataclass(frozen=True, slots=True)
class _Ref:
    """A reference by natural key, resolved to a central id inside the central transaction."""

    table: str
    key: str
    value: Any


def _aware(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    # SQLite hands back timezone-aware columns as naive datetimes; they were written in UTC.
    for column in table.c:
        value = row.get(column.name)
        timezone = isinstance(column.type, DateTime) and column.type.timezone
        if timezone and isinstance(value, datetime) and value.tzinfo is None:
            row[column.name] = value.replace(tzinfo=UTC)
    return row


def central_reachable(engine: Engine) -> bool:
    """Whether one statement on ``engine`` succeeds now (for status pages and tests)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
