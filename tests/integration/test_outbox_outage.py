"""Store and forward against the real PostgreSQL server: the central database becomes unreachable
(a proxy in front of it resets every connection; the server itself keeps running for other tests)
while the real runtime grades and sorts on its local outbox; once it is back, every fruit and
event record is there exactly once and in order. Two lines sharing the database, with an outage
in between, never hand out the same serial."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from grading.outbox import Forwarder, install_outbox
from grading.records import EventRecord
from grading.runtime import LineRuntime
from grading.schema import events, fruit
from grading.store import Lot, RecordWriter, create_store_engine, migrate, open_lot
from grading.trace.serials import LineSerials
from tests.line_fakes import FakeCamera, FakePlc, FakeScale, Fused, make_runtime
from tests.tcp_proxy import CuttableProxy

SPEED = 10.0  # cups per second per lane; two lanes: 20 fruit a second


@dataclass
class _Line:
    line_id: str
    local: Engine
    writer: RecordWriter
    forwarder: Forwarder
    lot: Lot


@dataclass
class _Central:
    url: str  # the test's PostgreSQL database, direct
    proxied_url: str  # the same through a proxy whose line can be cut
    proxy: CuttableProxy


@pytest.fixture
def central(postgres_url: str) -> Iterator[_Central]:
    url = make_url(postgres_url)
    proxy = CuttableProxy(url.port or 5432)
    try:
        yield _Central(postgres_url, url.set(port=proxy.port).render_as_string(hide_password=False), proxy)
    finally:
        proxy.close()


@pytest.fixture
def make_line(tmp_path: Path, central: _Central) -> Iterator[Any]:
    lines: list[_Line] = []
    engines: list[Engine] = []

    def make(line_id: str) -> _Line:
        local = create_store_engine(f"sqlite:///{tmp_path / line_id}-outbox.db")
        migrate(local)
        install_outbox(local)
        lot = open_lot(local, code="YN2612A", grower="g", variety="v", product="apple", recipe="apple", line=line_id)
        writer = RecordWriter(local, flush_interval_s=0.02, line_id=line_id)
        writer.start()
        central_engine = create_store_engine(central.proxied_url, connect_timeout_s=2)
        engines.extend([local, central_engine])
        forwarder = Forwarder(local, central_engine, idle_poll_s=0.05, retry_initial_s=0.1, retry_max_s=1.0)
        forwarder.start()
        line = _Line(line_id, local, writer, forwarder, lot)
        lines.append(line)
        return line

    yield make
    for line in lines:
        line.writer.close(30)
        line.forwarder.close()
    for engine in engines:
        engine.dispose()


async def _until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class _Feeder:
    """Exposes one frame per cup position as the fake belt passes it, and a test event every
    ten frames, for as long as asked."""

    def __init__(self, runtime: LineRuntime, plc: FakePlc, camera: FakeCamera, writer: RecordWriter, lot: Lot) -> None:
        self.runtime, self.plc, self.camera, self.writer, self.lot = runtime, plc, camera, writer, lot
        self.next_position = 102
        self.seq = 0

    async def run_for(self, duration_s: float) -> None:
        end_s = time.monotonic() + duration_s
        while time.monotonic() < end_s:
            passed = self.plc.position_at(time.monotonic()) - 0.5
            while self.next_position < passed:
                self.seq += 1
                self.camera.expose(self.seq, self.plc, float(self.next_position))
                self.next_position += 1
                if self.seq % 10 == 0:
                    self.writer.submit_event(
                        EventRecord(at=datetime.now(UTC), kind="test_tick", message="", lot_id=self.lot.id,
                                    payload={"seq": self.seq})
                    )
            await asyncio.sleep(0.02)


def _uids(engine: Engine, table: Any, line_id: str | None = None) -> list[str]:
    query = select(table.c.uid).order_by(table.c.id)
    if line_id is not None:
        query = query.where(table.c.line_id == line_id)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _fruit_states(engine: Engine) -> dict[str, tuple[int, bool]]:
    with engine.connect() as conn:
        return {uid: (outlet, late) for uid, outlet, late in conn.execute(select(fruit.c.uid, fruit.c.outlet, fruit.c.late))}


def _run_through_an_outage(make_line: Any, central: _Central, outage_s: float) -> None:
    proxy = central.proxy
    line = make_line("line-1")
    script = {p: [Fused(0, p), Fused(1, p)] for p in range(102, 102 + int(SPEED * (outage_s + 30)))}

    async def scenario() -> dict[str, Any]:
        plc, camera = FakePlc(SPEED), FakeCamera()
        runtime = make_runtime(
            writer=line.writer, lot=line.lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0), FakeScale(plc, 1)],
            script=script, line_name="line-1", outbox=line.forwarder.health,
        )
        task = asyncio.create_task(runtime.run())
        await _until(lambda: runtime.state != "starting" and runtime.timing.known, 10, "the runtime")
        runtime.start_intake()
        feeder = _Feeder(runtime, plc, camera, line.writer, line.lot)
        await feeder.run_for(2.0)
        await _until(lambda: line.forwarder.forwarded_total > 0, 20, "the first rows forwarded")

        proxy.set_cut(True)
        before = (runtime.counters.fruit_total, len(plc.writes))
        await feeder.run_for(outage_s)
        during = runtime.snapshot()
        after_outage = (runtime.counters.fruit_total, len(plc.writes))
        proxy.set_cut(False)

        await feeder.run_for(2.0)
        await runtime.shutdown()
        await task
        return {"before": before, "after_outage": after_outage, "during": during, "runtime": runtime}

    result = asyncio.run(scenario())
    assert line.writer.flush(30)
    runtime: LineRuntime = result["runtime"]
    # the line kept grading and sorting on its outbox while the central database was away
    assert result["after_outage"][0] - result["before"][0] >= SPEED * outage_s  # two lanes: about twice that
    assert result["after_outage"][1] > result["before"][1]
    during = result["during"]["outbox"]
    assert during["state"] == "down" and during["depth"] > 0 and during["oldest_age_s"] > 0 and during["last_error"]

    deadline = time.monotonic() + 120
    while line.forwarder.depth() > 0 or line.forwarder.health().state == "down":
        assert time.monotonic() < deadline, "the outbox did not drain"
        time.sleep(0.1)
    central_engine = create_store_engine(central.url)
    try:
        local_fruit, central_fruit = _uids(line.local, fruit), _uids(central_engine, fruit)
        assert len(local_fruit) == runtime.counters.fruit_total + runtime.counters.quarantined_total
        assert runtime.counters.quarantined_total == 0
        assert central_fruit == local_fruit  # none lost, none doubled, in order
        assert len(set(central_fruit)) == len(central_fruit)
        assert _fruit_states(central_engine) == _fruit_states(line.local)  # corrections (late cups) too
        local_events, central_events = _uids(line.local, events), _uids(central_engine, events)
        assert central_events == local_events and len(set(central_events)) == len(central_events)
        assert len(local_events) >= 2 + int(outage_s)  # line_started, the ticks (2 a second), line_stopped
    finally:
        central_engine.dispose()


@pytest.mark.postgres
def test_a_short_outage_loses_and_doubles_no_record(make_line: Any, central: _Central) -> None:
    _run_through_an_outage(make_line, central, outage_s=4.0)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_60_s_outage_loses_and_doubles_no_record(make_line: Any, central: _Central) -> None:
    _run_through_an_outage(make_line, central, outage_s=60.0)


@pytest.mark.postgres
def test_serials_stay_unique_across_two_lines_sharing_one_database_with_an_outage(
    make_line: Any, central: _Central
) -> None:
    """Two lines take carton serials and SSCC serial references and record each as an event,
    before, during and after an outage; both forward to one database."""
    proxy = central.proxy
    a, b = make_line("line-1"), make_line("line-2")
    serials = {line.line_id: LineSerials(line.local, line.line_id, int(line.line_id[-1]), block=5) for line in (a, b)}

    def take(phase: str, n: int) -> None:
        for _ in range(n):
            for line in (a, b):
                s = serials[line.line_id]
                payload = {"phase": phase, "serial": s.carton_serial(), "sscc_reference": s.sscc_reference(9)}
                line.writer.commit([], [EventRecord(at=datetime.now(UTC), kind="carton", message="", lot_id=line.lot.id, payload=payload)]).result(10)

    take("before", 20)
    proxy.set_cut(True)
    take("during", 30)
    assert all(line.forwarder.depth() > 0 for line in (a, b))
    proxy.set_cut(False)
    take("after", 20)
    for line in (a, b):
        line.forwarder.close(drain_timeout_s=60)
        assert line.forwarder.depth() == 0
    central_engine = create_store_engine(central.url)
    try:
        with central_engine.connect() as conn:
            rows = list(conn.execute(select(events.c.line_id, events.c.payload).where(events.c.kind == "carton")))
    finally:
        central_engine.dispose()
    assert len(rows) == 2 * 70
    cartons = [p["serial"] for _, p in rows]
    references = [p["sscc_reference"] for _, p in rows]
    assert len(set(cartons)) == len(cartons) and len(set(references)) == len(references)
    assert {p["phase"] for _, p in rows} == {"before", "during", "after"}
    # each line's serials carry it: line-1.<n> and references 1xxxxxxxx
    assert all(p["serial"].startswith(f"{line_id}.") and str(p["sscc_reference"])[0] == line_id[-1] for line_id, p in rows)
