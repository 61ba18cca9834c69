"""The store: engine set-up, migrations, lots, and the batched record writer.

SQLite (WAL, synchronous=FULL so a committed batch survives a power cut) is the embedded
default; PostgreSQL is the shared backend. Rows are written by one writer thread in batches so
the event loop never waits on the disk; ``flush()`` returns once everything submitted before it
is committed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, func, insert, select
from sqlalchemy.engine import make_url

from grading.schema import events, fruit, lots

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(Exception):
    """The database could not be opened, migrated or written."""


def create_store_engine(url: str) -> Engine:
    """Engine for ``url``; SQLite files get WAL and their directory is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a batch reported as written survives a power cut, not only a process crash.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


@dataclass(frozen=True)
class Lot:
    id: int
    code: str
    grower: str
    variety: str
    product: str
    recipe: str


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
            return Lot(int(lot_id), code, grower, variety, product, recipe)
        return Lot(int(row["id"]), row["code"], row["grower"], row["variety"], row["product"], row["recipe"])


def count_fruit(engine: Engine, lot_id: int | None = None) -> int:
    query = select(func.count()).select_from(fruit)
    if lot_id is not None:
        query = query.where(fruit.c.lot_id == lot_id)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


class RecordWriter:
    """Batches fruit and event rows into one writer thread.

    ``submit_*`` never blocks on the database. A failed batch is retried (with backoff) rather
    than dropped, so nothing acknowledged by ``flush()`` is ever lost.
    """

    def __init__(self, engine: Engine, *, batch_size: int = 200, flush_interval_s: float = 0.25) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._queue: queue.Queue[tuple[str, Mapping[str, Any]] | threading.Event | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.fruit_rows_written = 0
        self.batches_written = 0
        self.write_errors = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="record-writer", daemon=True)
        self._thread.start()

    def submit_fruit(self, row: Mapping[str, Any]) -> None:
        self._queue.put(("fruit", row))

    def submit_event(self, row: Mapping[str, Any]) -> None:
        self._queue.put(("events", row))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything submitted so far is committed. False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Write everything pending, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise StoreError("record writer did not finish in time")
        self._thread = None

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        batch: dict[str, list[Mapping[str, Any]]] = {"fruit": [], "events": []}
        waiters: list[threading.Event] = []
        stopping = False
        deadline = time.monotonic() + self._flush_interval_s
        while not stopping:
            timeout = max(0.0, deadline - time.monotonic())
            item: tuple[str, Mapping[str, Any]] | threading.Event | None | EllipsisType
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = ...  # the flush interval passed
            if item is None:
                stopping = True
            elif isinstance(item, threading.Event):
                waiters.append(item)
            elif item is not ...:
                table, row = item
                batch[table].append(row)
            size = len(batch["fruit"]) + len(batch["events"])
            due = item is ... or stopping or waiters or size >= self._batch_size
            if due:
                if size:
                    self._write(batch)
                    batch = {"fruit": [], "events": []}
                for waiter in waiters:
                    waiter.set()
                waiters = []
                deadline = time.monotonic() + self._flush_interval_s

    def _write(self, batch: Mapping[str, list[Mapping[str, Any]]]) -> None:
        delay_s = 0.1
        while True:
            try:
                with self._engine.begin() as conn:
                    if batch["events"]:
                        conn.execute(insert(events), batch["events"])
                    if batch["fruit"]:
                        conn.execute(insert(fruit), batch["fruit"])
            except Exception:  # keep the rows: a locked or unreachable database must not lose them
                self.write_errors += 1
                log.exception("store: batch of %d rows failed, retrying in %.1f s", sum(map(len, batch.values())), delay_s)
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            self.rows_written += len(batch["fruit"]) + len(batch["events"])
            self.fruit_rows_written += len(batch["fruit"])
            self.batches_written += 1
            return
