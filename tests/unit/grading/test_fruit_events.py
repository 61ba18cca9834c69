"""The graded-fruit bus: every subscriber gets every event in order, publishing never calls or
waits for a consumer, a consumer that raises or lags loses nothing, thread consumers too."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime

import pytest

from grading.fruit_events import FruitBus, FruitGraded
from grading.grader import GradeResult
from grading.measurement import FruitMeasurement
from grading.records import FruitRecord


def _record(cup: int) -> FruitRecord:
    return FruitRecord(
        str(uuid.uuid4()), 1, 0, cup, datetime.now(UTC), FruitMeasurement(200.0, 80.0, 78.0, 50.0, {}, 0, 0.0), 6,
        GradeResult("extra", "75-80", ()), 1, False, 10.0,
    )


def test_every_consumer_gets_every_event_in_order_and_publishing_never_waits() -> None:
    seen: dict[str, list[int]] = {"fast": [], "raising": [], "thread": [], "slow": []}
    release = threading.Event()
    threads: set[str] = set()

    def raising(event: FruitGraded) -> None:
        seen["raising"].append(event.seq)
        if event.seq % 3 == 0:
            raise RuntimeError("a broken consumer")

    def in_thread(event: FruitGraded) -> None:
        threads.add(threading.current_thread().name)
        release.wait(10)  # blocks: a consumer far behind
        seen["thread"].append(event.seq)

    async def scenario() -> tuple[int, int, int]:
        bus = FruitBus()
        bus.subscribe("fast", lambda e: seen["fast"].append(e.seq))
        failing = bus.subscribe("raising", raising)
        behind = bus.subscribe("thread", in_thread, mode="thread")
        with pytest.raises(ValueError):
            bus.subscribe("fast", lambda e: None)
        bus.start()
        bus.publish((_record(i), None) for i in range(1000))
        assert seen["fast"] == []  # nothing is handled inside publish
        late = bus.subscribe("slow", lambda e: seen["slow"].append(e.seq))  # subscribed while running
        bus.publish((_record(i), "timeout") for i in range(1000, 1500))
        await asyncio.sleep(0.05)
        lag = behind.lag
        release.set()
        await bus.drained()
        await bus.close()
        return lag, failing.errors, late.handled

    lag, errors, late_handled = asyncio.run(scenario())
    assert seen["fast"] == seen["raising"] == seen["thread"] == list(range(1, 1501))
    assert seen["slow"] == list(range(1001, 1501)) and late_handled == 500
    assert errors == 500  # every third event raised; the consumer kept receiving
    assert lag > 1000  # the blocked consumer only grew its own queue
    assert threads == {"gradeline-fruit-thread"}
