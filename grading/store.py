"""The store: engine set-up, migrations, lots, how a record becomes a row, and the record writer.

Owns the path from a typed record (``grading.records``) to a committed row:

* ``fruit_row`` / ``event_row`` are the one place a record becomes a row. Every non-finite
  float becomes NULL and is named in the row (``non_finite:<path>`` in a fruit's ``flags``,
  ``_non_finite`` in an event's payload), so the database never sees a NaN.
* ``RecordWriter`` commits units of records from one thread, durably (SQLite WAL with
  synchronous=FULL, or a PostgreSQL commit), in submission order. A unit is one transaction.
  A row the database refuses goes to the ``quarantine`` table with the database's reason and
  never blocks the rows after it; a database that is locked or unreachable is retried with
  backoff while everything waits in memory, in order. A replayed uid is a no-op.

Not owned here: what the line does when a commit is late (it calls ``mark_not_sorted``), and
where health is shown (the API reads ``RecordWriter.health()``).

SQLite (WAL) is the embedded default; PostgreSQL is the shared backend.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import numbers
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
    StatementError,
)

from drivers.health import Backoff, FaultState, HealthState
from grading.records import EventRecord, FruitRecord
from grading.schema import events, fruit, lots, quarantine

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(Exception):
    """The database could not be opened, migrated or written."""


# --- engine and migrations -------------------------------------------------------------------


def create_store_engine(
    url: str, *, sqlite_busy_timeout_s: float = 30.0, connect_timeout_s: float = 10.0
) -> Engine:
    """Engine for ``url``; SQLite files get WAL and their directory is created.

    ``sqlite_busy_timeout_s``: how long a SQLite statement waits for another connection's
    lock before failing with "database is locked" (the writer then retries with backoff).
    ``connect_timeout_s``: how long opening a PostgreSQL connection may take, so an
    unreachable server is a quick, retried error rather than a hang.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout_s}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a batch reported as written survives a power cut, not only a process crash.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(2, math.ceil(connect_timeout_s))  # libpq: whole seconds, >= 2
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _begin_sqlite(conn: Connection, mode: str = "") -> None:
    # pysqlite's legacy transaction control only emits BEGIN before INSERT/UPDATE/DELETE, so
    # DDL, SELECT or SAVEPOINT would run outside the transaction (a released savepoint would
    # commit on its own). Begin explicitly; IMMEDIATE also takes the write lock up front, so a
    # read-then-write transaction cannot fail half-way on a lock upgrade.
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that may use savepoints, on both backends."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            _begin_sqlite(conn, "IMMEDIATE")
        yield conn


_MIGRATING = threading.Lock()  # Alembic's migration context is process-global
_MIGRATION_LOCK_KEY = 0x67726164  # a PostgreSQL advisory lock: lines sharing a database migrate one at a time


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default), in one transaction."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with _MIGRATING, _write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


# --- lots --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lot:
    """A grower's lot on a line: what came in, and the recipe version it is graded by."""

    id: int
    code: str
    grower: str
    variety: str
    product: str
    recipe: str
    line: str = ""
    grower_id: str = ""
    origin_village: str = ""
    origin_plot: str = ""
    harvest_date: date | None = None
    received_weight_kg: float | None = None
    recipe_hash: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    started_by: str = ""
    closed_by: str | None = None
    platform_trace_code: str | None = None  # the national platform's 追溯码, opaque

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


def lot_from_row(row: Mapping[Any, Any]) -> Lot:
    return Lot(**{f.name: row[f.name] for f in dataclasses.fields(Lot)})


def open_lot(engine: Engine, *, code: str, grower: str, variety: str, product: str, recipe: str, line: str) -> Lot:
    """Return the lot with ``code``, creating it if new (a restart resumes the same lot)."""
    with engine.begin() as conn:
        row = conn.execute(select(lots).where(lots.c.code == code)).mappings().first()
        if row is None:
            lot_id = conn.execute(
                insert(lots).values(
                    code=code, grower=grower, variety=variety, product=product, recipe=recipe,
                    line=line, started_at=datetime.now(UTC),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            row = conn.execute(select(lots).where(lots.c.id == lot_id)).mappings().one()
        return lot_from_row(row)


def last_recorded_cups(engine: Engine, line: str, rows: int = 4096) -> dict[int, int]:
    """The cup index of each lane's newest fruit record on ``line`` (among its newest ``rows``).

    A line restarted after a crash sees again the cups that were in the camera's field; the
    runtime does not record those a second time.
    """
    query = (
        select(fruit.c.lane, fruit.c.cup_index)
        .select_from(fruit.join(lots, fruit.c.lot_id == lots.c.id))
        .where(lots.c.line == line)
        .order_by(fruit.c.id.desc())
        .limit(rows)
    )
    last: dict[int, int] = {}
    with engine.connect() as conn:
        for lane, cup_index in conn.execute(query):
            last.setdefault(int(lane), int(cup_index))
    return last


def count_fruit(engine: Engine, lot_id: int | None = None) -> int:
    query = select(func.count()).select_from(fruit)
    if lot_id is not None:
        query = query.where(fruit.c.lot_id == lot_id)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


# --- records to rows ---------------------------------------------------------------------------
#
# The coercions below turn numpy scalars and other number types into the builtins every driver
# binds, and turn a value of the wrong kind into an error here (the record is quarantined)
# rather than a driver error that could look transient. None passes through: whether a column
# may be NULL is the database's call, and a refusal is quarantined with its reason.


def _int(value: Any) -> int | None:
    return None if value is None else int(operator.index(value))


def _real(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number, got {type(value).__name__}: {value!r}")
    return float(value)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}: {value!r}")


def _datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")


def _finite(value: Any, path: str, non_finite: list[str]) -> Any:
    """``value`` with every non-finite float (also inside dicts and lists) made None; the paths
    of those floats are appended to ``non_finite``."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        non_finite.append(path)
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item, f"{path}.{key}" if path else str(key), non_finite) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item, f"{path}[{i}]", non_finite) for i, item in enumerate(value)]
    return value


def fruit_row(record: FruitRecord) -> dict[str, Any]:
    """The ``fruit`` row of ``record``.

    A non-finite float is stored as NULL and flagged ``non_finite:<column>``; inside
    ``colour_fractions`` the colour stays, with a JSON null, and is flagged
    ``non_finite:colour_fractions.<colour>`` (a dropped colour would read back as 0 %).
    """
    m, grade = record.measurement, record.grade
    row: dict[str, Any] = {
        "uid": _text(record.uid),
        "lot_id": _int(record.lot_id),
        "lane": _int(record.lane),
        "cup_index": _int(record.cup_index),
        "graded_at": _datetime(record.graded_at),
        "weight_g": _real(m.weight_g),
        "diameter_major_mm": _real(m.diameter_major_mm),
        "diameter_minor_mm": _real(m.diameter_minor_mm),
        "area_cm2": _real(m.area_cm2),
        "volume_cm3": _real(m.volume_cm3),
        "colour_fractions": {str(colour): _real(share) for colour, share in m.colour_fractions.items()},
        "defect_count": _int(m.defect_count),
        "defect_area_cm2": _real(m.defect_area_cm2),
        "elongation": _real(m.elongation),
        "quality_score": _real(m.quality_score),
        "flags": sorted(str(flag) for flag in m.flags),
        "views": _int(record.views),
        "quality_class": _text(grade.quality_class),
        "size_class": _text(grade.size_class),
        "reasons": [str(reason) for reason in grade.reasons],
        "outlet": _int(record.outlet),
        "late": None if record.late is None else bool(record.late),
        "decision_latency_ms": _real(record.decision_latency_ms),
        "frame_position_cups": _real(record.frame_position_cups),
        "carton_id": _int(record.carton_id),
    }
    non_finite: list[str] = []
    row = {column: _finite(value, column, non_finite) for column, value in row.items()}
    if non_finite:
        row["flags"] = sorted({*row["flags"], *(f"non_finite:{path}" for path in non_finite)})
    return row


def event_row(record: EventRecord) -> dict[str, Any]:
    """The ``events`` row of ``record``.

    A non-finite float in the payload becomes a JSON null, and its path (e.g. ``temp.max``) is
    listed under the payload key ``_non_finite``.
    """
    non_finite: list[str] = []
    payload = _finite(dict(record.payload), "", non_finite)
    if non_finite:
        payload["_non_finite"] = non_finite
    return {
        "uid": _text(record.uid),
        "at": _datetime(record.at),
        "kind": _text(record.kind),
        "lot_id": _int(record.lot_id),
        "message": _text(record.message),
        "payload": payload,
    }


def _jsonable(value: Any) -> Any:
    """Anything as plain JSON values: non-finite floats become null, unknown objects their repr."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(item) for item in value), key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _jsonable(float(value))
    return repr(value)


def _safe_text(text: str) -> str:
    # PostgreSQL refuses NUL in text and any text that is not valid UTF-8 (lone surrogates).
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _payload_json(value: Any) -> str:
    # ASCII-only JSON: escapes NUL and lone surrogates, so the quarantine row is always storable.
    return json.dumps(_jsonable(value), ensure_ascii=True, allow_nan=False)


# --- errors ------------------------------------------------------------------------------------

_ROW_ERRORS = (IntegrityError, DataError, ProgrammingError, NotSupportedError)


def _refused_by_row(exc: BaseException) -> bool:
    """Whether ``exc`` means the database refuses this row (quarantine it) rather than that
    the database is unavailable (keep the row, retry later)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or not isinstance(exc, _ROW_ERRORS):
            return False
        # SQLSTATE class 42 (undefined table or column, no privilege) is the schema, not the row:
        # every row would fail alike. Wait it out like SQLite's "no such table" (an
        # OperationalError) instead of quarantining every record.
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return not (isinstance(sqlstate, str) and sqlstate.startswith("42"))
    # Not from the driver: raised while binding this row's values (a value its type cannot take).
    return isinstance(exc, StatementError)


def _describe(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    return _safe_text(f"{type(cause).__name__}: {cause}".strip())


# --- the writer --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """A row the database refused; it is in the ``quarantine`` table with ``reason``."""

    table_name: str
    uid: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class CommitResult:
    """How a committed unit was stored: its rows were inserted, except those listed here."""

    quarantined: tuple[QuarantinedRow, ...] = ()
    # uids that were in the database already (a replay): left as they were
    already_stored_uids: frozenset[str] = frozenset()

    @property
    def quarantined_uids(self) -> frozenset[str]:
        return frozenset(q.uid for q in self.quarantined if q.uid is not None)


@dataclass(frozen=True, slots=True)
class WriterHealth:
    """What /metrics and the line status show of the record writer."""

    pending_rows: int  # submitted, not yet committed
    pending_units: int  # commits and corrections not yet resolved
    retries_total: int  # failed attempts that were retried (database locked or unreachable)
    quarantined_total: int
    oldest_pending_age_s: float  # 0.0 when nothing is pending
    last_error: str | None
    state: HealthState  # "down" while writes are failing
    rows_written: int
    fruit_rows_written: int
    duplicates_total: int  # rows skipped because their uid was stored already


@dataclass(eq=False, slots=True)
class _Row:
    table_name: str
    uid: str | None
    values: dict[str, Any]
    owner: _Unit


@dataclass(frozen=True, slots=True)
class _Refusal:
    table_name: str
    uid: str | None
    payload: object  # the row, or the record when it could not be mapped to one
    reason: str
    owner: _Unit


@dataclass(eq=False, slots=True)
class _Unit:
    """Records committed together: a ``commit()`` (with a future) or one ``submit_event``."""

    seq: int
    submitted_s: float
    fruit: tuple[FruitRecord, ...]
    events: tuple[EventRecord, ...]
    future: Future[CommitResult] | None
    rows: list[_Row] = field(default_factory=list)  # mapped once, on the first attempt
    unmappable: list[_Refusal] = field(default_factory=list)
    prepared: bool = False

    @property
    def size(self) -> int:
        return len(self.fruit) + len(self.events)


@dataclass(eq=False, slots=True)
class _Correction:
    seq: int
    submitted_s: float
    uids: tuple[str, ...]
    reason: str
    future: Future[int]


@dataclass(slots=True)
class _GroupOutcome:
    refused: list[_Refusal]
    inserted: dict[str, int]  # table name -> rows inserted
    inserted_uids: set[str]


_Work = list[_Unit] | _Correction
_CORRECTION_CHUNK = 500  # uids per IN (...) list, well under SQLite's bound-parameter limit


class RecordWriter:
    """Commits fruit and event records from one writer thread, in submission order.

    ``commit()`` returns a future that resolves once its unit is durably committed (the line
    awaits it before writing decisions to the PLC). Pending units are committed together in
    one transaction when several are waiting (group commit), up to ``batch_size`` rows, but a
    unit is never split. ``submit_event`` is fire and forget: events wait up to
    ``flush_interval_s`` to share a transaction.

    A row the database refuses is found by bisecting its batch under savepoints, inside the
    same transaction, and goes to ``quarantine``; its unit still commits. Any other failure
    (locked, unreachable, the schema missing) keeps everything queued and retries with
    backoff; the unit's future stays pending until it commits. A commit cannot be cancelled:
    once submitted it is written.

    ``clock`` decides when events are due, the backoff and the ages in ``health()``; the
    thread sleeps in real time until then, so a fake clock that does not move holds them.

    ``line_id`` is written on every row (fruit, events, quarantine): which line wrote it.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 200,
        flush_interval_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
        line_id: str = "",
    ) -> None:
        if batch_size < 1 or flush_interval_s <= 0:
            raise ValueError("need batch_size >= 1 and flush_interval_s > 0")
        if engine.dialect.name == "sqlite":
            dialect_insert: Callable[..., Any] = sqlite_insert
        elif engine.dialect.name == "postgresql":
            dialect_insert = postgresql_insert
        else:
            raise StoreError(f"the record writer supports SQLite and PostgreSQL, not {engine.dialect.name}")
        self._engine = engine
        self._line_id = line_id  # stamped on every row: several lines may share one database
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._clock = clock
        self._backoff = Backoff(retry_initial_s, retry_max_s, clock=clock)
        self._fault = FaultState(
            "store", clock=clock, consequence="records wait in memory and are retried", logger=log
        )
        self._inserts = {
            table.name: dialect_insert(table).on_conflict_do_nothing(index_elements=["uid"]).returning(table.c.uid)
            for table in (fruit, events)
        }
        self._cond = threading.Condition()
        self._items: deque[_Unit | _Correction] = deque()
        self._seq = 0  # last sequence number handed out
        self._done_seq = 0  # every item up to this one is resolved
        self._flush_seq = 0  # items up to this one are due now (flush() was called)
        self._pending_rows = 0
        self._pending_commits = 0  # units with a future: they are due at once
        self._stopping = False
        self._abandon = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.fruit_rows_written = 0
        self.batches_written = 0
        self._retries_total = 0
        self._quarantined_total = 0
        self._duplicates_total = 0

    # --- API, called from any thread ---------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                raise StoreError("record writer already started or closed")
            self._thread = threading.Thread(target=self._run, name="record-writer", daemon=True)
        self._thread.start()

    def commit(self, fruit: Sequence[FruitRecord], events: Sequence[EventRecord] = ()) -> Future[CommitResult]:
        """Commit ``fruit`` and ``events`` in one transaction; the future resolves once it has."""
        future: Future[CommitResult] = Future()
        future.set_running_or_notify_cancel()  # running: cancel() is refused, the unit is written
        self._put_unit(tuple(fruit), tuple(events), future)
        return future

    def submit_event(self, record: EventRecord) -> None:
        """Write ``record`` within ``flush_interval_s``, batched with other rows; never blocks."""
        self._put_unit((), (record,), None)

    def mark_not_sorted(self, uids: Iterable[str], reason: str) -> Future[int]:
        """Correct committed fruit whose decision did not reach the PLC: ``late``, outlet 0, and
        ``reason`` appended to ``reasons`` (once), in one transaction after every unit submitted
        before it. The future gives the number of rows corrected (uids not stored are skipped)."""
        future: Future[int] = Future()
        future.set_running_or_notify_cancel()
        with self._cond:
            self._check_open()
            self._seq += 1
            self._items.append(_Correction(self._seq, self._clock(), tuple(dict.fromkeys(uids)), reason, future))
            self._cond.notify_all()
        return future

    def flush(self, timeout_s: float | None = None) -> bool:
        """Write now, and wait until everything submitted so far is committed. False on timeout."""
        with self._cond:
            target = self._seq
            self._flush_seq = max(self._flush_seq, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done_seq >= target, timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Write everything pending, then stop the thread.

        If that takes longer than ``timeout_s`` (the database stays unavailable), the writer
        gives up: the futures still pending fail with ``StoreError`` and this raises it.
        """
        with self._cond:
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            self._fail_pending(StoreError("record writer closed before it was started"))
            return
        thread.join(timeout_s)
        if thread.is_alive():
            with self._cond:
                self._abandon = True
                pending = self._pending_rows
                self._cond.notify_all()
            raise StoreError(f"record writer did not finish in time; {pending} rows were not committed")
        self._thread = None

    def health(self) -> WriterHealth:
        with self._cond:
            now_s = self._clock()
            age_s = max(0.0, now_s - self._items[0].submitted_s) if self._items else 0.0
            return WriterHealth(
                pending_rows=self._pending_rows,
                pending_units=sum(1 for item in self._items if item.future is not None),
                retries_total=self._retries_total,
                quarantined_total=self._quarantined_total,
                oldest_pending_age_s=age_s,
                last_error=self._fault.last_error,
                state=self._fault.state,
                rows_written=self.rows_written,
                fruit_rows_written=self.fruit_rows_written,
                duplicates_total=self._duplicates_total,
            )

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("record writer is closed")

    def _put_unit(
        self, fruit: tuple[FruitRecord, ...], events: tuple[EventRecord, ...], future: Future[CommitResult] | None
    ) -> None:
        with self._cond:
            self._check_open()
            self._seq += 1
            unit = _Unit(self._seq, self._clock(), fruit, events, future)
            self._items.append(unit)
            self._pending_rows += unit.size
            self._pending_commits += future is not None
            self._cond.notify_all()

    # --- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            # A bug in the writer itself, not a database error (those are handled in _loop):
            # fail what is pending rather than leave every future waiting on a dead thread.
            log.critical("store: record writer stopped on an unexpected error", exc_info=exc)
            self._fault.fault(f"record writer stopped: {_describe(exc)}")
            with self._cond:
                self._closed = True  # later commits fail at once instead of waiting forever
            self._fail_pending(StoreError(f"record writer stopped: {_describe(exc)}"))
            raise

    def _loop(self) -> None:
        while True:
            work = self._next_work()
            if work is None:
                break
            try:
                if isinstance(work, _Correction):
                    corrected = self._apply_correction(work)
                else:
                    outcome = self._write_group(work)
            except Exception as exc:
                if isinstance(work, _Correction) and _refused_by_row(exc):
                    # The database refuses the correction itself; retrying cannot change that.
                    error = StoreError(f"correction refused: {_describe(exc)}")
                    log.error("store: correction of %d fruit refused: %s", len(work.uids), _describe(exc))
                    self._finish([work], functools.partial(work.future.set_exception, error))
                    continue
                self._failed(exc)
                continue
            self._backoff.succeeded()
            self._fault.ok()
            if isinstance(work, _Correction):
                self._finish([work], functools.partial(work.future.set_result, corrected))
            else:
                self._finish_group(work, outcome)
        if self._abandon:
            self._fail_pending(StoreError("record writer closed before these records were committed"))

    def _next_work(self) -> _Work | None:
        """Block until something is due; None once stopped (or abandoned)."""
        with self._cond:
            while not self._abandon:
                if not self._items:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    continue
                head = self._items[0]
                if isinstance(head, _Correction):
                    return head
                wait_s = self._flush_interval_s - (self._clock() - head.submitted_s)
                due = (
                    self._stopping
                    or self._pending_commits > 0
                    or self._pending_rows >= self._batch_size
                    or head.seq <= self._flush_seq
                    or wait_s <= 0
                )
                if due:
                    return self._group_locked()
                self._cond.wait(wait_s)
            return None

    def _group_locked(self) -> list[_Unit]:
        # The head units up to batch_size rows (at least one unit, never a part of one).
        group: list[_Unit] = []
        rows = 0
        for item in self._items:
            if not isinstance(item, _Unit) or (group and rows + item.size > self._batch_size):
                break
            group.append(item)
            rows += item.size
        return group

    def _failed(self, exc: Exception) -> None:
        # Whatever failed is still at the head of the queue: the next attempt re-forms its
        # group from there, with whatever arrived meanwhile.
        with self._cond:
            self._retries_total += 1
        self._fault.fault(_describe(exc))
        log.debug("store: write failed, retrying in %.2f s", self._backoff.delay_s, exc_info=exc)
        self._backoff.failed()
        with self._cond:
            while not self._abandon and not self._backoff.ready():
                self._cond.wait(self._backoff.wait_s())

    def _prepare(self, unit: _Unit) -> None:
        records: tuple[FruitRecord | EventRecord, ...] = (*unit.fruit, *unit.events)
        for record in records:
            table_name = "fruit" if isinstance(record, FruitRecord) else "events"
            try:
                values = fruit_row(record) if isinstance(record, FruitRecord) else event_row(record)
            except Exception as exc:
                uid = getattr(record, "uid", None)
                reason = f"cannot map record: {type(exc).__name__}: {exc}"
                unit.unmappable.append(_Refusal(table_name, uid if isinstance(uid, str) else None, record, reason, unit))
            else:
                values["line_id"] = self._line_id
                unit.rows.append(_Row(table_name, values["uid"], values, unit))
        unit.prepared = True

    def _write_group(self, units: list[_Unit]) -> _GroupOutcome:
        for unit in units:
            if not unit.prepared:
                self._prepare(unit)
        outcome = _GroupOutcome([u for unit in units for u in unit.unmappable], {}, set())
        with _write_transaction(self._engine) as conn:
            for table_name in ("events", "fruit"):  # events first: no fruit row refers to them
                rows = [row for unit in units for row in unit.rows if row.table_name == table_name]
                outcome.inserted[table_name] = self._insert_isolating(conn, table_name, rows, outcome)
            if outcome.refused:
                at = datetime.now(UTC)
                conn.execute(
                    insert(quarantine),
                    [
                        {
                            "at": at,
                            "table_name": refusal.table_name,
                            "uid": None if refusal.uid is None else _safe_text(refusal.uid),
                            "reason": _safe_text(refusal.reason),
                            "payload": _payload_json(refusal.payload),
                            "line_id": self._line_id,
                        }
                        for refusal in outcome.refused
                    ],
                )
        return outcome

    def _insert_isolating(self, conn: Connection, table_name: str, rows: list[_Row], outcome: _GroupOutcome) -> int:
        """Insert ``rows``; a refused row is bisected out into ``outcome.refused``. Rows inserted."""
        if not rows:
            return 0
        try:
            with conn.begin_nested():
                uids = conn.execute(self._inserts[table_name], [row.values for row in rows]).scalars().all()
        except Exception as exc:
            if not _refused_by_row(exc):
                raise
            if len(rows) == 1:
                row = rows[0]
                outcome.refused.append(_Refusal(row.table_name, row.uid, row.values, _describe(exc), row.owner))
                return 0
            mid = len(rows) // 2
            return self._insert_isolating(conn, table_name, rows[:mid], outcome) + self._insert_isolating(
                conn, table_name, rows[mid:], outcome
            )
        outcome.inserted_uids.update(uids)
        return len(uids)

    def _apply_correction(self, correction: _Correction) -> int:
        corrected = 0
        statement = (
            update(fruit)
            .where(fruit.c.id == bindparam("row_id"))
            .values(late=True, outlet=0, carton_id=None, reasons=bindparam("new_reasons", type_=fruit.c.reasons.type))
        )
        with _write_transaction(self._engine) as conn:
            for start in range(0, len(correction.uids), _CORRECTION_CHUNK):
                chunk = correction.uids[start : start + _CORRECTION_CHUNK]
                found = conn.execute(select(fruit.c.id, fruit.c.reasons).where(fruit.c.uid.in_(chunk))).all()
                if not found:
                    continue
                conn.execute(
                    statement,
                    [
                        {
                            "row_id": row.id,
                            # once: a replayed correction leaves the row as the first one did
                            "new_reasons": list(row.reasons)
                            + ([] if correction.reason in row.reasons else [correction.reason]),
                        }
                        for row in found
                    ],
                )
                corrected += len(found)
        return corrected

    def _finish_group(self, units: list[_Unit], outcome: _GroupOutcome) -> None:
        refused_by_unit: dict[int, list[QuarantinedRow]] = {}
        for refusal in outcome.refused:
            quarantined = QuarantinedRow(refusal.table_name, refusal.uid, refusal.reason)
            refused_by_unit.setdefault(refusal.owner.seq, []).append(quarantined)
            log.warning("store: %s row %s quarantined: %s", refusal.table_name, refusal.uid, refusal.reason)
            self._fault.error(f"{refusal.table_name} row {refusal.uid} quarantined: {refusal.reason}")
        mapped = sum(len(unit.rows) for unit in units)
        refused_mapped = len(outcome.refused) - sum(len(unit.unmappable) for unit in units)
        inserted = sum(outcome.inserted.values())
        with self._cond:
            self.rows_written += inserted
            self.fruit_rows_written += outcome.inserted["fruit"]
            self.batches_written += 1
            self._quarantined_total += len(outcome.refused)
            self._duplicates_total += mapped - refused_mapped - inserted

        def resolve() -> None:
            for unit in units:
                if unit.future is None:
                    continue
                refused = refused_by_unit.get(unit.seq, [])
                refused_uids = {q.uid for q in refused}
                already = frozenset(
                    row.uid
                    for row in unit.rows
                    if row.uid is not None and row.uid not in outcome.inserted_uids and row.uid not in refused_uids
                )
                unit.future.set_result(CommitResult(tuple(refused), already))

        self._finish(units, resolve)

    def _finish(self, items: Sequence[_Unit | _Correction], resolve: Callable[[], None]) -> None:
        """Take ``items`` (the head of the queue) off it, resolve their futures, wake flush()."""
        with self._cond:
            for _ in items:
                self._forget_locked(self._items.popleft())
        resolve()  # outside the lock: done-callbacks run here and may call health()
        with self._cond:
            self._done_seq = items[-1].seq
            self._cond.notify_all()

    def _forget_locked(self, item: _Unit | _Correction) -> None:
        if isinstance(item, _Unit):
            self._pending_rows -= item.size
            self._pending_commits -= item.future is not None

    def _fail_pending(self, error: StoreError) -> None:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            for item in items:
                self._forget_locked(item)
        lost = sum(item.size for item in items if isinstance(item, _Unit))
        if lost:
            log.error("store: %d rows were never committed: %s", lost, error)
        for item in items:
            if item.future is not None:
                item.future.set_exception(error)
        with self._cond:
            if items:
                self._done_seq = items[-1].seq
            self._cond.notify_all()
