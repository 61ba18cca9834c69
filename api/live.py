"""The live feed's hub: line snapshots a few times a second, and events, to every subscriber.

The hub samples the runtime's ``snapshot()`` every ``interval_s`` and derives events by
comparing consecutive samples (the line started or stopped; a device went from ok to fault or
back), so the runtime needs no hooks. Other features publish their own events directly with
``publish(type, data)`` (alarms, cartons, lots) and may add state sources of their own
(``add_source``), pushed on every tick beside the line's snapshot.

Each message is encoded once and handed to every subscriber. A subscriber that falls
``queue_size`` messages behind is dropped rather than allowed to hold memory or slow the
others; the HMI reconnects and starts again from a fresh snapshot. Runs on the line's event
loop; nothing here blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

STATE_TYPES = frozenset({"snapshot"})  # plus each added source: the latest one of each is what counts


class SubscriberOverflow(Exception):
    """The subscriber fell too far behind and was dropped."""


class HubClosed(Exception):
    """The hub shut down (the app is stopping)."""


def derive_events(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Events between two consecutive line snapshots, in a stable order."""
    if previous is None:
        return []
    events: list[tuple[str, dict[str, Any]]] = []
    was, now = previous.get("state"), current.get("state")
    # starting -> running is a start (intake was asked for while the line came up);
    # starting -> stopped is not a stop: the line came up stopped
    if now == "running" and was != "running":
        events.append(("line_started", {"fruit_total": current.get("fruit_total")}))
    elif now == "stopped" and was == "running":
        events.append(("line_stopped", {"fruit_total": current.get("fruit_total")}))
    before = previous.get("devices") or {}
    for device, state in sorted((current.get("devices") or {}).items()):
        prior = before.get(device, "ok")
        if prior == "ok" and state != "ok":
            events.append(("device_fault", {"device": device, "state": state}))
        elif prior != "ok" and state == "ok":
            events.append(("device_returned", {"device": device, "state": state}))
    return events


class Subscription:
    def __init__(self, hub: LiveHub, queue_size: int) -> None:
        self._hub = hub
        self._queue: deque[str] = deque()
        self._size = queue_size
        self._ready = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def offer(self, message: str) -> None:
        if self.overflowed or self.closed:
            return
        if len(self._queue) >= self._size:
            self.overflowed = True
            self._queue.clear()
        else:
            self._queue.append(message)
        self._ready.set()

    async def next(self) -> str:
        """The next message; raises ``SubscriberOverflow`` or ``HubClosed``."""
        while not self._queue:
            if self.overflowed:
                raise SubscriberOverflow("fell too far behind")
            if self.closed:
                raise HubClosed("the live feed is closing")
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def close(self) -> None:
        self.closed = True
        self._ready.set()
        self._hub._subscribers.discard(self)


class LiveHub:
    def __init__(
        self,
        snapshot: Callable[[], Mapping[str, Any]],
        *,
        interval_s: float = 0.5,
        recheck_s: float = 10.0,
        queue_size: int = 64,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._snapshot = snapshot
        self.interval_s = interval_s
        self.recheck_s = recheck_s  # how often a connection's credential is checked again
        self._queue_size = queue_size
        self._wall_clock = wall_clock
        self._sources: dict[str, Callable[[], Any]] = {}
        self._subscribers: set[Subscription] = set()
        self._latest: dict[str, str] = {}  # state type -> its last encoded message
        self._previous: Mapping[str, Any] | None = None
        self._seq = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def add_source(self, type_: str, read: Callable[[], Any]) -> None:
        """Push ``read()`` as a ``type_`` message on every tick, beside the line's snapshot."""
        if type_ in self._sources or type_ in STATE_TYPES:
            raise ValueError(f"live source {type_!r} exists already")
        self._sources[type_] = read

    @property
    def state_types(self) -> frozenset[str]:
        return STATE_TYPES | frozenset(self._sources)

    def publish(self, type_: str, data: Mapping[str, Any]) -> None:
        """Send an event (or a state message) to every subscriber now."""
        self._seq += 1
        message = json.dumps(
            {"seq": self._seq, "at": self._wall_clock().isoformat(), "type": type_, "data": data},
            ensure_ascii=False, separators=(",", ":"), default=str,
        )
        if type_ in self.state_types:
            self._latest[type_] = message
        for subscriber in list(self._subscribers):
            subscriber.offer(message)
            if subscriber.overflowed:
                log.info("live: a subscriber fell %d messages behind and was dropped", self._queue_size)
                self._subscribers.discard(subscriber)

    def tick(self) -> None:
        """Sample the line once: events first, then the fresh state."""
        current = self._snapshot()
        for type_, data in derive_events(self._previous, current):
            self.publish(type_, data)
        self._previous = current
        self.publish("snapshot", current)
        for type_, read in self._sources.items():
            try:
                data = read()
            except Exception:  # a broken source must not stop the line's feed
                log.exception("live: source %s failed", type_)
                continue
            self.publish(type_, data)

    def subscribe(self) -> Subscription:
        """A new subscriber; it gets the latest state messages first, then everything new."""
        subscription = Subscription(self, self._queue_size)
        for message in self._latest.values():
            subscription.offer(message)
        self._subscribers.add(subscription)
        return subscription

    async def run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("live: sampling the line failed")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self.tick()  # so the first subscriber has a snapshot at once
        self._task = asyncio.create_task(self.run(), name="live-hub")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for subscriber in list(self._subscribers):
            subscriber.close()
