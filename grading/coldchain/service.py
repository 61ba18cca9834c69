"""The cold chain's loop: ticks the monitor, and writes finished minutes and alarm transitions.

Once a second (``interval_s``) on the event loop: freshness and alarm delays (``tick``), then
the rows that are ready go to the store through a worker thread. Retention is applied hourly.
At ``close`` everything still in memory is written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from grading.alarm_journal import write_transitions
from grading.alarms import AlarmEngine
from grading.coldchain.history import ColdchainStore
from grading.coldchain.monitor import ColdchainMonitor

log = logging.getLogger(__name__)


class ColdchainService:
    def __init__(
        self,
        engine: Engine,
        alarms: AlarmEngine,
        monitor: ColdchainMonitor | None,
        store: ColdchainStore,
        *,
        retention_days: float,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self.alarms = alarms
        self.monitor = monitor
        self.store = store
        self.retention_days = retention_days
        self.interval_s = interval_s
        self._clock = clock
        self._on_tick = on_tick
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._pruned_s: float | None = None
        self._residents_s: float | None = None
        # Lots and pallets in each room now, refreshed every few seconds and after each move,
        # so the live feed shows them without a query per message.
        self.residents: dict[str, list[dict[str, Any]]] = {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="coldchain")

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not stop the alarms; the rows wait
                log.exception("cold chain: writing history or the alarm journal failed")
            await asyncio.sleep(self.interval_s)

    async def step(self, *, everything: bool = False) -> None:
        if self.monitor is not None:
            self.monitor.tick()
        else:
            self.alarms.tick()
        if self._on_tick is not None:
            self._on_tick()
        await self.flush(everything=everything)
        now = self._clock()
        if self.monitor is not None and (self._residents_s is None or now - self._residents_s >= 5.0):
            await self.refresh_residents()
        if self._pruned_s is None or now - self._pruned_s > 3600:
            self._pruned_s = now
            await asyncio.to_thread(self.store.prune, self.retention_days)

    async def refresh_residents(self) -> None:
        if self.monitor is None:
            return
        self._residents_s = self._clock()
        rooms = list(self.monitor.rooms)
        self.residents = await asyncio.to_thread(lambda: {room: self.store.residents(room) for room in rooms})

    async def flush(self, *, everything: bool = False) -> None:
        """Write what is ready: alarm transitions first (an acknowledgement is durable before it
        is answered), then finished minutes."""
        async with self._lock:
            transitions = self.alarms.drain()
            rows = self.monitor.finished_minutes(everything=everything) if self.monitor is not None else []
            try:
                if transitions:
                    await asyncio.to_thread(write_transitions, self._engine, transitions)
                if rows:
                    await asyncio.to_thread(self.store.write, rows)
            except BaseException:
                # Keep them for the next try rather than lose them.
                self.alarms.requeue(transitions)
                if self.monitor is not None:
                    self.monitor.history.ready[:0] = rows
                raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush(everything=True)
