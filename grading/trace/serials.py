"""Durable counters for carton serials (AI 21) and SSCC serial references: never one used twice.

Owns the ``trace_counters`` table. A value is handed out only after the transaction that moved
the counter past it has committed (SQLite WAL with synchronous=FULL, or a PostgreSQL commit),
so a crash or power cut at any moment can lose values, which are then skipped, but never give
one out again. ``SerialCounter`` reserves blocks of ``block`` values in one commit to spare the
disk; whatever of a block is unused when the process stops is skipped, never reused.

Several lines (one central database, or each its own outbox while the central one is away):
``LineSerials`` gives each line its own counters (``carton:<line id>``, ``sscc:<line id>``) in
the database it writes to (its local outbox when it has one), and puts the line into every value
it hands out: carton serials are ``<line id>.<n>``, SSCC serial references start with the line's
digit. Two lines can therefore never hand out the same serial, whether or not they can reach each
other or the central database, and nothing needs to be allocated centrally (docs/traceability.md).
The counter rows themselves are not forwarded.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from grading.schema import trace_counters
from grading.store import _write_transaction


def reserve(engine: Engine, name: str, count: int = 1, *, first: int = 1) -> range:
    """Move counter ``name`` on by ``count`` in one committed transaction and return the values
    it moved past. A new counter starts at ``first``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    for _attempt in range(3):
        with _write_transaction(engine) as conn:  # SQLite: BEGIN IMMEDIATE, the write lock first
            moved = conn.execute(
                update(trace_counters)
                .where(trace_counters.c.name == name)
                .values(next_value=trace_counters.c.next_value + count)
                .returning(trace_counters.c.next_value)
            ).scalar_one_or_none()
            if moved is not None:
                return range(int(moved) - count, int(moved))
        try:
            with engine.begin() as conn:
                conn.execute(insert(trace_counters).values(name=name, next_value=first + count))
            return range(first, first + count)
        except IntegrityError:
            continue  # another line created it first: take the update path again
    raise RuntimeError(f"could not reserve from counter {name!r}")


def peek(engine: Engine, name: str) -> int | None:
    """The next value counter ``name`` would give (None if it was never used)."""
    with engine.connect() as conn:
        value = conn.execute(select(trace_counters.c.next_value).where(trace_counters.c.name == name)).scalar()
    return None if value is None else int(value)


class SerialCounter:
    """Values of one counter, reserved ``block`` at a time; ``next()`` returns a durable value."""

    def __init__(self, engine: Engine, name: str, *, block: int = 1, first: int = 1) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self._engine = engine
        self._name = name
        self._block = block
        self._first = first
        self._values: range = range(0)
        self._index = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            if self._index >= len(self._values):
                self._values = reserve(self._engine, self._name, self._block, first=self._first)
                self._index = 0
            value = self._values[self._index]
            self._index += 1
            return value


class LineSerials:
    """Carton serials and SSCC serial references for one line, never equal to another line's.

    ``line_id`` and ``line_number`` are the line's ``[line] id`` and ``[line] number``, each unique
    among the lines sharing a database (see the module doc).
    """

    def __init__(self, engine: Engine, line_id: str, line_number: int, *, block: int = 1) -> None:
        if not 1 <= line_number <= 9:
            raise ValueError("line_number must be a digit 1-9")
        self.line_id = line_id
        self.line_number = line_number
        self._cartons = SerialCounter(engine, f"carton:{line_id}", block=block)
        self._sscc = SerialCounter(engine, f"sscc:{line_id}", block=block)

    def carton_serial(self) -> str:
        """The next carton serial (AI 21), ``<line id>.<n>``: at most 20 characters of CSET 82."""
        serial = f"{self.line_id}.{self._cartons.next()}"
        if len(serial) > 20:
            raise RuntimeError(f"carton serial {serial!r} is longer than AI (21) allows (20)")
        return serial

    def sscc_reference(self, width: int) -> int:
        """The next SSCC serial reference of ``width`` digits (16 minus the company prefix's
        length): the line's digit, then the counter's value."""
        if width < 2:
            raise ValueError("an SSCC serial reference needs at least 2 digits to carry a line digit")
        value = self._sscc.next()
        span = 10 ** (width - 1)
        if value >= span:
            raise RuntimeError(f"SSCC counter sscc:{self.line_id} is past {span - 1}: the serial references are used up")
        return self.line_number * span + value
