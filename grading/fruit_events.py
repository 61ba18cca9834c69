"""One graded-fruit event, many consumers.

The runtime publishes one ``FruitGraded`` per graded fruit once its record is committed (and
after any correction made at commit: a fruit whose decision could not be written is published
as late, recirculated, in no carton). Consumers subscribe to the ``FruitBus``: the line's
counters and /metrics, lot statistics, the carton packer, the live feed, and later the drift
detector. A new consumer never needs an edit to the runtime.

Why no consumer can slow the decision path or lose an event: ``publish`` only appends the
event to each subscriber's own queue (unbounded, a ``deque``) and wakes it; it never waits
and never calls a consumer. Each subscriber is drained by its own task on the loop, in
batches, yielding to the loop between batches (``mode="loop"``: for consumers that touch line
state, cheap), or by its own thread (``mode="thread"``: for consumers that block, e.g. on a
database). A consumer that falls behind only grows its own queue (``lag`` is exposed); a
consumer that raises has the error logged and counted and keeps receiving the next events.
Memory is the bound: at 40 fruit/s a consumer stuck for an hour holds 144 000 small events.
Every fruit is also in the store, so a consumer that restarts recovers from there, not from
the bus.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from grading.records import FruitRecord

log = logging.getLogger(__name__)

_BATCH = 256  # events a loop consumer handles before it yields the loop


@dataclass(frozen=True, slots=True)
class FruitGraded:
    """A graded fruit whose record is committed, as committed.

    ``seq`` counts the events of this bus from 1, without gaps: a consumer can tell it missed
    none. ``weigh_cause`` says why the fruit has no weight, if it has none.
    """

    seq: int
    record: FruitRecord
    weigh_cause: str | None = None


FruitHandler = Callable[[FruitGraded], None]


class FruitSubscription:
    """One consumer's queue and where it stands."""

    def __init__(self, bus: FruitBus, name: str, handler: FruitHandler, mode: Literal["loop", "thread"]) -> None:
        self.name = name
        self.mode = mode
        self._bus = bus
        self._handler = handler
        self._queue: deque[FruitGraded] = deque()
        self.handled = 0  # events handed to the handler
        self.errors = 0  # of those, the handler raised
        self.last_seq = 0
        self._wake = asyncio.Event() if mode == "loop" else None
        self._cond = threading.Condition() if mode == "thread" else None
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._idle: asyncio.Event | None = None

    @property
    def lag(self) -> int:
        """Events published and not yet handled."""
        return len(self._queue)

    def _offer(self, events: list[FruitGraded]) -> None:
        if self._cond is not None:
            with self._cond:
                self._queue.extend(events)
                self._cond.notify()
        else:
            self._queue.extend(events)
            assert self._wake is not None
            self._wake.set()

    def _handle(self, event: FruitGraded) -> None:
        try:
            self._handler(event)
        except Exception:
            self.errors += 1
            log.exception("fruit consumer %s failed on event %d", self.name, event.seq)
        self.handled += 1
        self.last_seq = event.seq

    def _start(self) -> None:
        if self.mode == "loop":
            self._task = asyncio.get_running_loop().create_task(self._drain_loop(), name=f"fruit-consumer-{self.name}")
        else:
            self._thread = threading.Thread(target=self._drain_thread, name=f"gradeline-fruit-{self.name}", daemon=True)
            self._thread.start()

    async def _drain_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                for _ in range(min(_BATCH, len(self._queue))):
                    self._handle(self._queue.popleft())
                await asyncio.sleep(0)  # let the decision path run between batches
            if self._closed:
                return

    def _drain_thread(self) -> None:
        assert self._cond is not None
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                event = self._queue.popleft()
            self._handle(event)

    async def _stop(self) -> None:
        self._closed = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            assert self._cond is not None
            with self._cond:
                self._cond.notify()
            await asyncio.to_thread(self._thread.join)


class FruitBus:
    """Fan-out of ``FruitGraded`` to every subscriber (see the module docstring).

    ``publish`` is called on the loop; subscribing is open until ``close``. Subscribers added
    while the bus runs start at once; those added before ``start`` start with it.
    """

    def __init__(self) -> None:
        self._subscriptions: list[FruitSubscription] = []
        self._seq = 0
        self._running = False

    @property
    def published(self) -> int:
        return self._seq

    @property
    def subscriptions(self) -> tuple[FruitSubscription, ...]:
        return tuple(self._subscriptions)

    def subscribe(
        self, name: str, handler: FruitHandler, *, mode: Literal["loop", "thread"] = "loop"
    ) -> FruitSubscription:
        """Call ``handler`` with every event published from now on, in order, off the publisher.

        ``mode="loop"``: on the loop, for cheap handlers that touch line state; ``"thread"``:
        in the subscription's own thread, for handlers that block.
        """
        if any(s.name == name for s in self._subscriptions):
            raise ValueError(f"a fruit consumer named {name!r} is already subscribed")
        subscription = FruitSubscription(self, name, handler, mode)
        self._subscriptions.append(subscription)
        if self._running:
            subscription._start()
        return subscription

    def start(self) -> None:
        """Start draining (on the running loop)."""
        if not self._running:
            self._running = True
            for subscription in self._subscriptions:
                subscription._start()

    def publish(self, records: Iterable[tuple[FruitRecord, str | None]]) -> None:
        """Queue one event per (record, weigh cause) for every subscriber; never waits."""
        events = []
        for record, cause in records:
            self._seq += 1
            events.append(FruitGraded(self._seq, record, cause))
        if events:
            for subscription in self._subscriptions:
                subscription._offer(events)

    async def drained(self) -> None:
        """Return once every subscriber has handled every event published so far."""
        target = self._seq
        if not self._running:
            return
        while any(s.last_seq < target and not s._closed for s in self._subscriptions):
            await asyncio.sleep(0.001)

    async def close(self) -> None:
        """Hand every queued event to its subscriber, then stop them."""
        if self._running:
            await self.drained()
        for subscription in self._subscriptions:
            await subscription._stop()
        self._running = False
