"""Durable counters for carton serials (AI 21) and SSCC serial references: never one used twice.

Owns the ``trace_counters`` table. A value is handed out only after the transaction that moved
the counter past it has committed (SQLite WAL with synchronous=FULL, or a PostgreSQL commit),
so a crash or power cut at any moment can lose values, which are then skipped, but never give
one out again. ``SerialCounter`` reserves blocks of ``block`` values in one commit to spare the
disk; whatever of a block is unused when the process stops is skipped, never reused. Several
lines sharing one PostgreSQL database share the counter row, whose update takes a row lock.
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
