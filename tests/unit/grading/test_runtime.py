"""The line runtime against in-memory fakes: record before sort, weights by encoder timing,
late and failed decisions, restarts.

The belt moves at 10 cups/s in real time from position 100 (``FakePlc``); each lane's fake
scale streams 100 g + the index of the cup on its load cell, 3 cups upstream; the tracker
emits the fused fruit each test scripts per frame position, so these tests pin the runtime's
own logic only. Waits are on conditions with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from grading.runtime import LineRuntime
from grading.schema import fruit
from grading.store import Lot, RecordWriter, count_fruit, create_store_engine, migrate, open_lot
from tests.line_fakes import FakeCamera, FakePlc, FakeScale, Fused, make_runtime

SPEED = 10.0


async def _until(predicate, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[object, Lot, RecordWriter, Path]]:
    path = tmp_path / "t.db"
    engine = create_store_engine(f"sqlite:///{path}", sqlite_busy_timeout_s=0.05)
    migrate(engine)
    lot = open_lot(engine, code="T", grower="", variety="", product="apple", recipe="apple", line="t")
    writer = RecordWriter(engine, flush_interval_s=0.02, retry_max_s=0.1)
    writer.start()
    yield engine, lot, writer, path
    writer.close(10)
    engine.dispose()


async def _running(runtime: LineRuntime) -> asyncio.Task[None]:
    task = asyncio.create_task(runtime.run())
    await _until(lambda: runtime.state != "starting")
    await _until(lambda: runtime.timing.known)
    return task


def _rows(engine) -> list:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return list(conn.execute(select(fruit).order_by(fruit.c.id)).mappings())


def test_records_are_committed_before_their_decisions_are_written(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, _ = store

    async def scenario() -> tuple[list[int], FakePlc, LineRuntime]:
        plc, camera = FakePlc(SPEED), FakeCamera()
        stored_at_write: list[int] = []
        write = plc.write_decisions

        async def checked_write(decisions):  # type: ignore[no-untyped-def]
            stored_at_write.append(count_fruit(engine))  # what a crash now would leave behind
            await write(decisions)

        plc.write_decisions = checked_write  # type: ignore[method-assign]
        script = {104: [Fused(0, 104), Fused(1, 104)], 105: [Fused(0, 105, defect_count=1, defect_area_cm2=4.0)]}
        runtime = make_runtime(writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0), FakeScale(plc, 1)], script=script)
        task = await _running(runtime)
        runtime.start_intake()
        await _until(lambda: plc.position_at(time.monotonic()) > 105.2)
        camera.expose(1, plc, 104.0)
        camera.expose(2, plc, 105.0)
        await _until(lambda: runtime.counters.fruit_total == 3)
        await runtime.shutdown()
        await task
        return stored_at_write, plc, runtime

    stored_at_write, plc, runtime = asyncio.run(scenario())
    # each frame's records were in the database before its decisions were written (the two
    # frames' records may share a transaction)
    assert len(stored_at_write) == 2 and stored_at_write[0] >= 2 and stored_at_write[1] == 3
    assert [(w.lane, w.cup_index, w.outlet) for w in plc.writes] == [(0, 104, 1), (1, 104, 1), (0, 105, 4)]
    assert runtime.counters.by_quality == {"extra": 2, "cull": 1}
    assert runtime.counters.weights_missing_total == 0
    # 100 g + cup index: each fruit got its own cup's weight, never a neighbour's
    assert runtime.counters.weight_g_sum == pytest.approx(204.0 + 204.0 + 205.0)
    rows = _rows(engine)
    assert [(r["cup_index"], r["outlet"], r["late"], r["frame_position_cups"]) for r in rows] == [
        (104, 1, False, 104.0), (104, 1, False, 104.0), (105, 4, False, 105.0)
    ]


def test_no_weight_goes_to_recheck_and_a_late_decision_is_not_written(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, _ = store

    async def scenario() -> tuple[FakePlc, dict]:  # type: ignore[type-arg]
        plc, camera = FakePlc(SPEED), FakeCamera()
        # cup 104 is fused in time; cup 90 is fused when it is already past its deadline
        script = {104: [Fused(0, 104)], 105: [Fused(0, 90)]}
        runtime = make_runtime(writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0, broken=True)], script=script)
        task = await _running(runtime)
        runtime.start_intake()
        await _until(lambda: plc.position_at(time.monotonic()) > 105.2)
        camera.expose(1, plc, 104.0)
        camera.expose(2, plc, 105.0)
        await _until(lambda: runtime.counters.fruit_total == 2)
        snapshot = runtime.snapshot()
        await runtime.shutdown()
        await task
        return plc, snapshot

    plc, snapshot = asyncio.run(scenario())
    assert [(w.cup_index, w.outlet) for w in plc.writes] == [(104, 3)]  # the recheck outlet
    assert snapshot["late_total"] == 1
    assert snapshot["outlets"] == {"0": 1, "3": 1}
    assert snapshot["quality_classes"] == {"recheck": 2}
    # cup 104 crossed the load cell while the scale was down; cup 90 before the line started
    assert snapshot["weigh_failures"]["device_down"] == 1 and snapshot["weigh_failures"]["timeout"] == 1
    assert snapshot["devices"]["scale-0"] == "fault"


def test_a_failed_plc_write_leaves_records_that_say_the_cups_recirculated(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, _ = store

    async def scenario() -> LineRuntime:
        plc, camera = FakePlc(SPEED), FakeCamera()
        plc.fail_writes = True
        runtime = make_runtime(writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0)], script={104: [Fused(0, 104)]})
        task = await _running(runtime)
        runtime.start_intake()
        await _until(lambda: plc.position_at(time.monotonic()) > 104.2)
        camera.expose(1, plc, 104.0)
        await _until(lambda: runtime.counters.fruit_total == 1)
        await runtime.shutdown()
        await task
        return runtime

    runtime = asyncio.run(scenario())
    assert runtime.counters.late_total == 1 and runtime.counters.by_outlet == {0: 1}
    assert runtime.counters.plc_write_failures_total == 1
    writer.flush(10)
    (row,) = _rows(engine)
    assert row["late"] and row["outlet"] == 0
    assert any("PLC write failed" in reason for reason in row["reasons"])


def test_a_record_not_committed_by_its_deadline_is_not_sorted(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, path = store

    async def scenario() -> tuple[FakePlc, LineRuntime]:
        plc, camera = FakePlc(SPEED), FakeCamera()
        runtime = make_runtime(writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0)], script={104: [Fused(0, 104)]})
        task = await _running(runtime)
        runtime.start_intake()
        await _until(lambda: plc.position_at(time.monotonic()) > 104.2)
        holder = sqlite3.connect(path, timeout=1)
        holder.execute("BEGIN EXCLUSIVE")  # the database is locked: no commit can finish
        try:
            camera.expose(1, plc, 104.0)
            # the deadline (cup 104 at 109, 0.5 s from now) passes while the store is locked
            await _until(lambda: plc.position_at(time.monotonic()) > 109.5)
            assert runtime.counters.fruit_total == 0  # nothing counted that is not committed
        finally:
            holder.rollback()
            holder.close()
        await _until(lambda: runtime.counters.fruit_total == 1)
        await runtime.shutdown()
        await task
        return plc, runtime

    plc, runtime = asyncio.run(scenario())
    assert plc.writes == []
    assert runtime.counters.late_total == 1 and runtime.counters.unsorted_after_commit_total == 1
    writer.flush(10)
    (row,) = _rows(engine)
    assert row["late"] and row["outlet"] == 0


def test_a_record_the_store_refuses_is_quarantined_and_its_cup_not_sorted(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, _ = store

    async def scenario() -> tuple[FakePlc, LineRuntime]:
        plc, camera = FakePlc(SPEED), FakeCamera()
        no_such_lot = Lot(999, "X", "", "", "apple", "apple")  # a foreign key the database refuses
        runtime = make_runtime(
            writer=writer, lot=no_such_lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0)], script={104: [Fused(0, 104)]}
        )
        task = await _running(runtime)
        runtime.start_intake()
        await _until(lambda: plc.position_at(time.monotonic()) > 104.2)
        camera.expose(1, plc, 104.0)
        await _until(lambda: runtime.counters.quarantined_total == 1)
        await runtime.shutdown()
        await task
        return plc, runtime

    plc, runtime = asyncio.run(scenario())
    assert plc.writes == [] and runtime.counters.fruit_total == 0
    assert runtime.counters.quarantined_total == 1  # (the line_started event of that lot is quarantined too)


def test_after_a_restart_cups_already_recorded_are_not_recorded_again(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, _ = store

    async def scenario() -> FakePlc:
        plc, camera = FakePlc(SPEED), FakeCamera()
        script = {104: [Fused(0, 103), Fused(0, 104)], 105: [Fused(0, 105)]}
        runtime = make_runtime(
            writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0)], script=script,
            resume_after_cups={0: 104},
        )
        task = await _running(runtime)
        runtime.start_intake()
        await _until(lambda: plc.position_at(time.monotonic()) > 105.2)
        camera.expose(1, plc, 104.0)
        camera.expose(2, plc, 105.0)
        await _until(lambda: runtime.counters.fruit_total == 1)
        await runtime.shutdown()
        await task
        return plc

    plc = asyncio.run(scenario())
    assert [w.cup_index for w in plc.writes] == [105]


def test_stopped_intake_grades_nothing(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, _ = store

    async def scenario() -> tuple[FakePlc, LineRuntime, FakeCamera]:
        plc, camera = FakePlc(SPEED), FakeCamera()
        runtime = make_runtime(writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0)], script={104: [Fused(0, 104)]})
        task = await _running(runtime)
        assert runtime.state == "stopped"
        await _until(lambda: plc.position_at(time.monotonic()) > 104.2)
        camera.expose(1, plc, 104.0)
        await _until(lambda: camera.frames.empty())
        await runtime.shutdown()
        await task
        return plc, runtime, camera

    plc, runtime, _ = asyncio.run(scenario())
    assert runtime.counters.fruit_total == 0 and plc.writes == []


def test_frames_are_placed_on_the_trigger_grid_from_plc_timing(store) -> None:  # type: ignore[no-untyped-def]
    engine, lot, writer, _ = store

    async def scenario() -> list[float | None]:
        plc, camera = FakePlc(SPEED, pitch_cups=0.5), FakeCamera()
        runtime = make_runtime(writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0)])
        task = await _running(runtime)
        runtime.start_intake()
        await _until(lambda: plc.position_at(time.monotonic()) > 103.0)
        for seq, position in enumerate((101.5, 102.0, 102.5)):
            camera.expose(seq, plc, position + 0.08)  # stamps 8 ms late: still their own trigger
        await _until(lambda: len(runtime.vision.positions) == 3)  # type: ignore[attr-defined]
        await runtime.shutdown()
        await task
        return runtime.vision.positions  # type: ignore[attr-defined, no-any-return]

    assert asyncio.run(scenario()) == [101.5, 102.0, 102.5]
