"""The vision pool: worker processes give the in-process pipeline's views, refuse frames when
full, survive a killed worker, fail clearly when they cannot build, and leave nothing behind.

Each test starts its own pool on its own loop (a worker costs imports plus kernel loading,
about 1-3 s); waits are on conditions with deadlines, and nothing is timed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from vision.bench import bench_frames
from vision.pipeline import FramePipeline, FruitView, settings_for_product
from vision.pool import (
    SHM_PREFIX,
    LensSpec,
    MeasurerSpec,
    QualitySpec,
    UndistortingMeasurer,
    VisionPool,
    VisionPoolClosed,
    VisionWorkerCrashed,
    VisionWorkerStartError,
    build_measurer,
)
from vision.quality import QualityModel, QualityModelError

SETTINGS = settings_for_product("apple", 0.8, 4)  # the bench frames' geometry: 1280x480, 4 lanes
SHAPE = (480, 1280, 3)
POSITIONS = [i * 0.37 for i in range(4)]  # as rendered by bench_frames


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rendered = bench_frames(len(POSITIONS))
    assert rendered[0].shape == SHAPE
    return rendered


def _our_segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith(f"{SHM_PREFIX}{os.getpid()}_")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """Every test's pools, closed or failed, leave no segment and no worker process."""
    before = _our_segments()
    yield
    assert _our_segments() <= before, f"shared memory left behind: {_our_segments() - before}"
    assert not multiprocessing.active_children(), f"processes left behind: {multiprocessing.active_children()}"


def _assert_released(pids: list[int]) -> None:
    assert not multiprocessing.active_children()
    for pid in pids:
        assert not _alive(pid), f"worker {pid} still running"


def test_two_workers_give_the_in_process_views_and_close_releases_everything(frames: list[np.ndarray]) -> None:
    expected = [FramePipeline(SETTINGS).measure(f, p) for f, p in zip(frames, POSITIONS, strict=True)]

    async def run() -> None:
        pool = VisionPool(MeasurerSpec(SETTINGS), workers=2, frame_shape=SHAPE)
        try:
            await pool.start()
            assert pool.workers_ready == 2
            pids = [pid for pid in pool.worker_pids() if pid is not None]
            assert len(set(pids)) == 2 and os.getpid() not in pids
            segments = _our_segments()
            assert len(segments) == 1
            futures = [pool.submit(f, p) for f, p in zip(frames, POSITIONS, strict=True)]  # 4 = 2 workers x 2 slots
            assert all(f is not None for f in futures)
            got = [await f for f in futures if f is not None]
            assert got == expected
            assert sum(len(v) for v in got) > 100  # real frames, full of fruit
            # frames still in flight when the pool closes fail, rather than hang
            late = pool.submit(frames[0], 0.0)
            assert late is not None
        finally:
            pool.close()
        with pytest.raises(VisionPoolClosed):
            await late
        assert not (segments & _our_segments())
        _assert_released(pids)
        with pytest.raises(VisionPoolClosed):
            pool.submit(frames[0], 0.0)
        pool.close()  # idempotent

    asyncio.run(run())


def test_split_by_lanes_gives_the_whole_frames_views(frames: list[np.ndarray]) -> None:
    """Each of two workers measures its two lanes' rows; merged, lanes and rows back on the
    frame's scale, they are the views one pipeline finds in the whole frame."""
    expected = [FramePipeline(SETTINGS).measure(f, p) for f, p in zip(frames, POSITIONS, strict=True)]

    async def run() -> list[list[FruitView]]:
        pool = VisionPool(MeasurerSpec(SETTINGS), workers=2, frame_shape=SHAPE, split="lanes")
        try:
            await pool.start()
            got = []
            for f, p in zip(frames, POSITIONS, strict=True):
                future = pool.submit(f, p)
                assert future is not None
                got.append(await future)
            return got
        finally:
            pool.close()

    got = asyncio.run(run())
    assert {v.lane for views in got for v in views} == {0, 1, 2, 3}

    def rounded(value: object) -> object:
        # the skin read sums in another order when a lane's rows sit elsewhere: 1e-15 apart
        if isinstance(value, float):
            return round(value, 9)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return [rounded(v) for v in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: rounded(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return value

    def by_place(views: list[FruitView]) -> object:
        return rounded(sorted(views, key=lambda v: (v.lane, v.x_px)))

    assert [by_place(v) for v in got] == [by_place(v) for v in expected]


def test_split_by_lanes_needs_a_lane_per_worker() -> None:
    with pytest.raises(ValueError, match="cannot split"):
        VisionPool(MeasurerSpec(SETTINGS), workers=5, frame_shape=SHAPE, split="lanes")


def test_full_pool_refuses_frames_and_one_worker_matches_its_spec_with_quality_and_lens(
    frames: list[np.ndarray], tmp_path: Path, lightness_model: QualityModel
) -> None:
    model_path = tmp_path / "model.json"
    lightness_model.save(model_path)
    pitch_px = 110.0 / 0.8
    spec = MeasurerSpec(
        SETTINGS,
        QualitySpec(str(model_path), from_x_px=640.0, pitch_px=pitch_px, exit_x_px=1280.0 - pitch_px / 2),
        LensSpec(((900.0, 0.0, 640.0), (0.0, 900.0, 240.0), (0.0, 0.0, 1.0)), (-0.02, 0.0, 0.0, 0.0)),
    )
    reference = build_measurer(spec)
    assert isinstance(reference, UndistortingMeasurer)
    # one worker measures in submission order, so its score-once bookkeeping matches one pipeline's
    expected = [reference.measure(f, p) for f, p in zip(frames, POSITIONS, strict=True)]
    assert any(v.quality_score is not None for views in expected for v in views)

    async def run() -> list[list[FruitView]]:
        got: list[list[FruitView]] = []
        async with VisionPool(spec, workers=1, frame_shape=SHAPE, slots_per_worker=2) as pool:
            for pair in (0, 2):
                first = pool.submit(frames[pair], POSITIONS[pair])
                second = pool.submit(frames[pair + 1], POSITIONS[pair + 1])
                assert first is not None and second is not None
                assert pool.submit(frames[0], 0.0) is None  # both slots busy: the caller drops it
                got += [await first, await second]
            assert pool.counters.frames_full_total == 2
            assert pool.counters.frames_submitted_total == 4
            assert pool.counters.frames_measured_total == 4
            with pytest.raises(ValueError, match="built for"):
                pool.submit(frames[0][:100], 0.0)
        return got

    assert asyncio.run(run()) == expected


def test_killed_worker_fails_its_frame_and_the_pool_recovers(
    frames: list[np.ndarray], until: Callable[[Callable[[], object], float, str], Awaitable[None]]
) -> None:
    expected = FramePipeline(SETTINGS).measure(frames[1], POSITIONS[1])

    async def run() -> None:
        pool = VisionPool(MeasurerSpec(SETTINGS), workers=1, frame_shape=SHAPE)
        try:
            await pool.start()
            (pid,) = pool.worker_pids()
            assert pid is not None
            # stopped first, so it cannot finish the frame before it is killed
            os.kill(pid, signal.SIGSTOP)
            pending = pool.submit(frames[0], POSITIONS[0])
            assert pending is not None
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(VisionWorkerCrashed, match=rf"pid {pid}\) exited with code -9"):
                await asyncio.wait_for(pending, timeout=30)
            assert pool.counters.frames_failed_total == 1
            await until(lambda: pool.workers_ready == 1, 60, "the replacement worker")
            assert pool.counters.worker_restarts_total == 1
            (new_pid,) = pool.worker_pids()
            assert new_pid is not None and new_pid != pid
            assert not _alive(pid)  # reaped, not a zombie
            again = pool.submit(frames[1], POSITIONS[1])
            assert again is not None
            assert await again == expected
        finally:
            pool.close()
        _assert_released([pid, new_pid])

    asyncio.run(run())


def test_start_fails_clearly_when_the_measurer_cannot_be_built(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.json"
    spec = MeasurerSpec(SETTINGS, QualitySpec(str(missing), 640.0, 137.5, 1211.25))

    async def run() -> VisionPool:
        pool = VisionPool(spec, workers=2, frame_shape=SHAPE)
        with pytest.raises(VisionWorkerStartError, match="could not build its measurer: QualityModelError") as info:
            await pool.start()
        assert isinstance(info.value.__cause__, QualityModelError)
        assert str(missing) in str(info.value)
        assert "QualityModel.load" in info.value.remote_traceback
        return pool

    pool = asyncio.run(run())
    with pytest.raises(VisionPoolClosed):  # start released everything
        pool.submit(np.zeros(SHAPE, np.uint8), 0.0)


def test_a_pool_never_closed_is_released_by_its_finalizer() -> None:
    async def run() -> tuple[VisionPool, list[int]]:
        pool = VisionPool(MeasurerSpec(SETTINGS), workers=1, frame_shape=SHAPE)
        await pool.start()
        return pool, [pid for pid in pool.worker_pids() if pid is not None]

    pool, pids = asyncio.run(run())  # the loop is closed; the pool was not
    assert _our_segments()
    del pool
    gc.collect()
    assert not _our_segments()
    _assert_released(pids)


def test_spec_is_a_measurer_factory() -> None:
    spec = MeasurerSpec(SETTINGS)
    measurer = spec()
    assert isinstance(measurer, FramePipeline) and measurer.settings == SETTINGS
    with pytest.raises(ValueError, match="workers"):
        VisionPool(spec, workers=0, frame_shape=SHAPE)
    with pytest.raises(ValueError, match="frame_shape"):
        VisionPool(spec, workers=1, frame_shape=(480, 1280, 4))
