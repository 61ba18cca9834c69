"""Vision off the line loop's GIL: worker processes that measure frames held in shared memory.

Owns three things:

- ``MeasurerSpec`` and ``build_measurer``: a picklable description of one frame measurer (the
  pipeline's settings, an optional taught quality model by file path, an optional lens
  calibration) and the function that builds it, in a worker process or in a thread alike;
- ``UndistortingMeasurer``: a pipeline behind the lens's undistortion;
- ``VisionPool``: N worker processes (started with ``spawn``, never a fork of the threaded line
  process), each with its own measurer, fed through a fixed set of frame slots in one
  ``multiprocessing.shared_memory`` segment. A frame costs the loop one copy into a slot and a
  small message; its views come back as a future resolved on the asyncio loop.

Not owned here: what to do with a frame the pool refuses (the caller drops it), the order in
which results are consumed (the caller awaits its futures in its own order), and the worker
count's configuration (the composition root passes it in). Opens no device and no database;
the only file it reads is the quality model a spec names.

Results come back on the loop through ``loop.add_reader`` on each worker's result pipe, read
non-blocking and framed here, so the loop never waits on a half-written message, and every
piece of the pool's state is touched by the loop's thread only. The loop's cost per result is
one read and one unpickle: 0.5-0.65 ms for the 77 views of an 8-lane frame on the shared
2-core development machine, about half of it unpickling. A reader thread would unpickle
under the same GIL; measured against this, it was no better at p99 and worse at the worst
case, so it is not used (docs/vision.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import secrets
import signal
import struct
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.shared_memory import SharedMemory
from typing import Any, Literal, Protocol

import numpy as np

from vision.calibration import Undistorter
from vision.pipeline import FramePipeline, QualityScoring
from vision.quality import QualityModel
from vision.views import FruitView, VisionSettings

__all__ = [
    "LensSpec",
    "Measurer",
    "MeasurerSpec",
    "QualitySpec",
    "UndistortingMeasurer",
    "VisionFrameError",
    "VisionPool",
    "VisionPoolClosed",
    "VisionPoolCounters",
    "VisionPoolError",
    "VisionWorkerCrashed",
    "VisionWorkerStartError",
    "build_measurer",
]

log = logging.getLogger(__name__)

SHM_PREFIX = "gradeline_vision_"  # the pool's /dev/shm segments start with this
_HEADER = struct.Struct("!I")  # length of each pickled message on a result pipe
_READ_CHUNK_BYTES = 1 << 20


# ----------------------------------------------------------------------------- measurers


class Measurer(Protocol):
    def measure(self, image_bgr: np.ndarray, belt_position_cups: float | None = None) -> list[FruitView]: ...


class UndistortingMeasurer:
    """Removes lens distortion (from a checkerboard calibration) before measuring a frame."""

    def __init__(self, pipeline: FramePipeline, undistort: Callable[[np.ndarray], np.ndarray]) -> None:
        self._pipeline = pipeline
        self._undistort = undistort

    def measure(self, image_bgr: np.ndarray, belt_position_cups: float | None = None) -> list[FruitView]:
        return self._pipeline.measure(self._undistort(image_bgr), belt_position_cups)


@dataclass(frozen=True)
class QualitySpec:
    """A taught quality model by file path, and which views it scores (see ``QualityScoring``)."""

    model_path: str
    from_x_px: float
    pitch_px: float
    exit_x_px: float


@dataclass(frozen=True)
class LensSpec:
    """Lens undistortion: OpenCV's 3x3 intrinsic matrix and distortion coefficients."""

    camera_matrix: tuple[tuple[float, ...], ...]
    dist_coeffs: tuple[float, ...]


@dataclass(frozen=True)
class MeasurerSpec:
    """How to build one frame measurer; small and picklable, so a worker process builds its own.

    Calling the spec builds a measurer, so it also serves where a zero-argument measurer
    factory is expected (one measurer per worker thread).
    """

    settings: VisionSettings
    quality: QualitySpec | None = None
    lens: LensSpec | None = None

    def __call__(self) -> Measurer:
        return build_measurer(self)


def build_measurer(spec: MeasurerSpec) -> Measurer:
    """A ``FramePipeline`` for ``spec`` (its colour table built and kernels loaded), behind the
    lens's undistortion when the spec has one. Raises ``QualityModelError`` for a model file
    that cannot be read."""
    quality = None
    if spec.quality is not None:
        q = spec.quality
        quality = QualityScoring(QualityModel.load(q.model_path), q.from_x_px, q.pitch_px, q.exit_x_px)
    pipeline = FramePipeline(spec.settings, quality)
    if spec.lens is None:
        return pipeline
    return UndistortingMeasurer(pipeline, Undistorter(spec.lens.camera_matrix, spec.lens.dist_coeffs))


# ----------------------------------------------------------------------------- errors


class VisionPoolError(RuntimeError):
    """Something went wrong in the vision pool; the subclasses say what."""


class VisionWorkerStartError(VisionPoolError):
    """A worker could not build or warm its measurer (its exception is the ``__cause__`` when it
    could be carried over, and its traceback is in ``remote_traceback``)."""

    def __init__(self, message: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


class VisionWorkerCrashed(VisionPoolError):
    """The worker process measuring this frame exited before returning its views."""


class VisionFrameError(VisionPoolError):
    """The measurer raised on this frame; the worker goes on with the next."""

    def __init__(self, message: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


class VisionPoolClosed(VisionPoolError):
    """The pool was closed before this frame's views came back."""


# ----------------------------------------------------------------------------- worker process


def _send(fd: int, message: object) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(_HEADER.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data):]


def _pickled_exception(exc: BaseException) -> bytes | None:
    try:
        return pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


def _worker_main(
    spec: MeasurerSpec,
    shm_name: str,
    frame_shape: tuple[int, int, int],
    slot_bytes: int,
    slot_count: int,
    tasks: Connection,
    results: Connection,
    opencv_threads: int | None,
    niceness: int,
) -> None:
    """One worker: build and warm the measurer, report ready, then measure slots until the
    parent goes away (end of file on the task pipe) or terminates it."""
    # Ctrl-C, and the SIGTERM of `systemctl stop` or `timeout`, reach the whole process group
    # or cgroup; the parent finishes the frames in flight and then stops its workers itself
    # (SIGKILL, or end of file on the task pipe when it dies)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = results.fileno()
    try:
        if niceness:
            os.nice(niceness)
        import cv2

        if opencv_threads is not None:
            cv2.setNumThreads(opencv_threads)
        shm = SharedMemory(name=shm_name)
        # a slot holds a whole frame; a worker that measures a group of lanes uses its first rows
        slots = [np.ndarray(frame_shape, np.uint8, buffer=shm.buf, offset=k * slot_bytes) for k in range(slot_count)]
        started_s = time.perf_counter()
        measurer = build_measurer(spec)
        # the first measure allocates the frame buffers and builds any undistortion maps
        measurer.measure(np.zeros(frame_shape, np.uint8), None)
        warm_s = time.perf_counter() - started_s
    except BaseException as exc:
        _send(out, ("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc(), _pickled_exception(exc)))
        return
    _send(out, ("ready", os.getpid(), warm_s))
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            break
        slot, frame_id, belt_position_cups = task
        try:
            views = measurer.measure(slots[slot], belt_position_cups)
        except Exception as exc:
            _send(out, ("error", frame_id, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            continue
        _send(out, ("views", frame_id, views))
    del slots  # the segment cannot be closed while arrays still point into it
    shm.close()


# ----------------------------------------------------------------------------- the pool


@dataclass
class VisionPoolCounters:
    """Plain counters, read by the runtime's metrics."""

    frames_submitted_total: int = 0
    frames_full_total: int = 0  # submit found no free slot: the caller dropped the frame
    frames_measured_total: int = 0
    frames_failed_total: int = 0  # the measurer raised, the worker crashed, or the pool closed
    worker_restarts_total: int = 0  # replacements started after a worker exited
    worker_start_failures_total: int = 0  # replacements that could not build their measurer
    result_loop_s_total: float = 0.0  # loop time spent reading and unpickling results (wall)
    result_loop_s_max: float = 0.0  # the longest single read of a result pipe (wall)
    result_loop_cpu_s_total: float = 0.0  # the same time, counting only the loop thread's CPU


@dataclass
class _Pending:
    slot: int
    future: asyncio.Future[list[FruitView]]


@dataclass(eq=False)
class _Worker:
    index: int
    process: BaseProcess
    tasks: Connection  # parent's end: (slot, frame id, belt position)
    results: Connection  # parent's end, non-blocking, read by the loop
    ready: asyncio.Future[None]
    free_slots: list[int]
    pending: dict[int, _Pending] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    is_ready: bool = False
    gone: bool = False  # its pipes are closed and its process reaped


@dataclass
class _Resources:
    """What must be released even when the pool is never closed: the finalizer's state, with
    no reference back to the pool, so the pool can still be collected."""

    processes: set[BaseProcess] = field(default_factory=set)
    connections: set[Connection] = field(default_factory=set)
    shm: SharedMemory | None = None


def _release(resources: _Resources) -> None:
    """Stop every worker and unlink the segment; safe to call twice."""
    for process in resources.processes:
        if process.is_alive():
            process.kill()  # a worker holds nothing worth a graceful stop (and ignores SIGTERM)
    for process in resources.processes:
        process.join(timeout=5.0)
        if process.is_alive():
            process.kill()
            process.join(timeout=5.0)
        with contextlib.suppress(ValueError):
            process.close()
    resources.processes.clear()
    for conn in resources.connections:
        conn.close()
    resources.connections.clear()
    if resources.shm is not None:
        shm, resources.shm = resources.shm, None
        shm.close()
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()


class VisionPool:
    """``workers`` processes measuring frames of ``frame_shape`` (height_px, width_px, 3) in
    shared memory, at most ``slots_per_worker`` frames in flight per worker.

    Use from one asyncio loop::

        pool = VisionPool(spec, workers=2, frame_shape=(1280, 1280, 3))
        await pool.start()            # every worker built and warmed, or VisionWorkerStartError
        try:
            future = pool.submit(frame.image_bgr, frame.belt_position_cups)
            if future is None:
                ...                   # every slot busy: drop the frame
            views = await future      # or a VisionPoolError subclass
        finally:
            pool.close()

    ``submit`` and ``close`` must be called on the loop ``start`` ran on. Frames may finish
    out of order across workers; await the futures in the order you need. Spawned workers
    import the program's main module again, so it must be safe to import (the ``gradeline``
    script, ``python -m api.cli`` and pytest are).

    Each worker has its own measurer, so a taught quality model's score-each-fruit-once
    bookkeeping is per worker: with N workers a fruit may be scored up to N times (each is
    a valid score of that fruit, and the tracker averages them). ``submit`` gives a frame to
    the lowest-numbered of the least busy workers, so at light load consecutive frames stay
    on one worker and a fruit is scored once.

    A worker that exits fails its frames in flight with ``VisionWorkerCrashed`` and is
    replaced at once (built and warmed again; ``counters.worker_restarts_total``); until the
    replacement is ready the pool runs one worker short. A replacement that cannot be built
    is retried every ``restart_delay_s``.
    """

    def __init__(
        self,
        spec: MeasurerSpec,
        workers: int,
        frame_shape: tuple[int, int, int],
        slots_per_worker: int = 2,
        *,
        opencv_threads: int | None = 1,
        niceness: int = 5,
        restart_delay_s: float = 5.0,
        split: Literal["frames", "lanes"] = "frames",
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        if split == "lanes" and workers > spec.settings.lanes:
            raise ValueError(f"{workers} workers cannot split {spec.settings.lanes} lanes")
        if slots_per_worker < 1:
            raise ValueError(f"slots_per_worker must be at least 1, not {slots_per_worker}")
        if len(frame_shape) != 3 or frame_shape[2] != 3 or min(frame_shape) < 1:
            raise ValueError(f"frame_shape must be (height_px, width_px, 3), not {frame_shape}")
        self.spec = spec
        self.workers = workers
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]), 3)
        self.slots_per_worker = slots_per_worker
        # OpenCV threads per worker (None: OpenCV's default, one per core). The workers are
        # the parallelism; a pool of OpenCV threads in each would oversubscribe the cores
        # (measured: no faster per frame, and less throughput under load; docs/vision.md).
        self.opencv_threads = opencv_threads
        # Added to each worker's nice value, so that when vision saturates the cores the
        # line's own process still gets the CPU at once: with 2 busy workers on 2 cores the
        # loop's p99 lateness fell from 4.4-4.9 ms to 1.9-2.6 ms, at the same frames/s.
        self.niceness = niceness
        self.restart_delay_s = restart_delay_s
        # "frames": each frame to one worker (throughput); "lanes": every frame to every worker,
        # each measuring its own group of lanes (a frame is measured in 1/workers of the time)
        self.split = split
        lanes, height = spec.settings.lanes, self.frame_shape[0]
        groups = [(w * lanes // workers, (w + 1) * lanes // workers) for w in range(workers)]
        # the rows of each group, as the pipeline bands lanes (lane i: rows i*h//lanes ..)
        self._parts = [(l0, l1, l0 * height // lanes, l1 * height // lanes) for l0, l1 in groups]
        self.counters = VisionPoolCounters()
        self._frame_bytes = int(np.prod(self.frame_shape))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[_Worker | None] = [None] * workers
        self._reading: dict[int, _Worker] = {}  # result pipe fd -> worker, while registered
        self._slot_arrays: list[np.ndarray] = []
        self._next_frame_id = 0
        self._started = False
        self._closed = False
        self._restart_handles: dict[int, asyncio.TimerHandle] = {}
        self._resources = _Resources()
        self._finalizer = weakref.finalize(self, _release, self._resources)

    # --------------------------------------------------------------- lifecycle

    async def start(self, timeout_s: float = 120.0) -> None:
        """Spawn every worker; return once each has built its measurer and measured one blank
        frame (which also loads the compiled kernels). On a worker's failure, or when
        ``timeout_s`` passes first, release everything and raise ``VisionWorkerStartError``."""
        if self._loop is not None:
            raise RuntimeError("VisionPool.start() called twice")
        loop = self._loop = asyncio.get_running_loop()
        slot_count = self.workers * self.slots_per_worker
        try:
            shm = SharedMemory(
                name=f"{SHM_PREFIX}{os.getpid()}_{secrets.token_hex(4)}", create=True,
                size=slot_count * self._frame_bytes,
            )
            self._resources.shm = shm
            self._slot_arrays = [
                np.ndarray(self.frame_shape, np.uint8, buffer=shm.buf, offset=k * self._frame_bytes)
                for k in range(slot_count)
            ]
            for index in range(self.workers):
                self._spawn(index)
            deadline_s = loop.time() + timeout_s
            while True:  # until every current worker is ready (one may be replaced meanwhile)
                waiting: list[asyncio.Future[None]] = []
                for worker in self._workers:
                    assert worker is not None
                    if not worker.ready.done():
                        waiting.append(worker.ready)
                    elif worker.ready.cancelled():
                        raise VisionPoolClosed("the vision pool was closed while it was starting")
                    elif (error := worker.ready.exception()) is not None:
                        raise error
                if not waiting:
                    break
                remaining_s = deadline_s - loop.time()
                if remaining_s <= 0:
                    raise VisionWorkerStartError(
                        f"{len(waiting)} of {self.workers} vision workers not ready after {timeout_s:g} s"
                    )
                await asyncio.wait(waiting, timeout=remaining_s, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self.close()
            raise
        self._started = True
        log.info("vision pool: %d workers ready, %d slots of %s", self.workers, slot_count, self.frame_shape)

    async def __aenter__(self) -> VisionPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers, fail the frames in flight with ``VisionPoolClosed`` and unlink the
        shared memory. Idempotent; blocks only while the terminated workers are reaped."""
        if self._closed:
            return
        self._closed = True
        for handle in self._restart_handles.values():
            handle.cancel()
        self._restart_handles.clear()
        for worker in [*self._reading.values(), *(w for w in self._workers if w is not None)]:
            worker.gone = True  # the finalizer below terminates and reaps it
            self._stop_reading(worker)
            self._fail_pending(worker, VisionPoolClosed("the vision pool was closed"))
            if not worker.ready.done():
                worker.ready.cancel()
            elif not worker.ready.cancelled():
                worker.ready.exception()  # retrieved: a start error is raised by start() or logged
        self._slot_arrays.clear()  # the segment cannot be closed while arrays point into it
        self._finalizer()

    # --------------------------------------------------------------- frames

    def _part_spec(self, index: int) -> MeasurerSpec:
        if self.split == "frames":
            return self.spec
        l0, l1, _, _ = self._parts[index]
        return dataclasses.replace(self.spec, settings=dataclasses.replace(self.spec.settings, lanes=l1 - l0))

    def _part_shape(self, index: int) -> tuple[int, int, int]:
        if self.split == "frames":
            return self.frame_shape
        _, _, y0, y1 = self._parts[index]
        return (y1 - y0, self.frame_shape[1], 3)

    def submit(
        self, image_bgr: np.ndarray, belt_position_cups: float | None = None
    ) -> asyncio.Future[list[FruitView]] | None:
        """Copy the frame into a free slot and hand it to a worker; ``None`` (counted in
        ``counters.frames_full_total``) when every slot is busy."""
        if self._closed:
            raise VisionPoolClosed("the vision pool is closed")
        if self._loop is None:
            raise RuntimeError("VisionPool.submit() before start()")
        if image_bgr.shape != self.frame_shape or image_bgr.dtype != np.uint8:
            raise ValueError(
                f"a {image_bgr.shape} {image_bgr.dtype} frame; the pool was built for {self.frame_shape} uint8"
            )
        position = None if belt_position_cups is None else float(belt_position_cups)
        if self.split == "lanes":
            return self._submit_split(image_bgr, position)
        while True:
            worker = self._least_busy()
            if worker is None:
                self.counters.frames_full_total += 1
                return None
            slot = worker.free_slots.pop()
            np.copyto(self._slot_arrays[slot], image_bgr)
            frame_id = self._next_frame_id
            self._next_frame_id += 1
            try:
                worker.tasks.send((slot, frame_id, position))
            except OSError:  # it exited since its last result: try another
                worker.free_slots.append(slot)
                self._on_exit(worker)
                continue
            future: asyncio.Future[list[FruitView]] = self._loop.create_future()
            worker.pending[frame_id] = _Pending(slot, future)
            self.counters.frames_submitted_total += 1
            return future

    def _submit_split(self, image_bgr: np.ndarray, position: float | None) -> asyncio.Future[list[FruitView]] | None:
        """Every worker gets its group of lanes of this frame; one future for all their views."""
        assert self._loop is not None
        workers = [w for w in self._workers if w is not None and not w.gone and w.is_ready and w.free_slots]
        if len(workers) < self.workers:  # one is busy or being replaced: the frame cannot be whole
            self.counters.frames_full_total += 1
            return None
        parts: list[asyncio.Future[list[FruitView]]] = []
        for worker, (_, _, y0, y1) in zip(workers, self._parts, strict=True):
            slot = worker.free_slots.pop()
            np.copyto(self._slot_arrays[slot][: y1 - y0], image_bgr[y0:y1])
            frame_id = self._next_frame_id
            self._next_frame_id += 1
            part: asyncio.Future[list[FruitView]] = self._loop.create_future()
            try:
                worker.tasks.send((slot, frame_id, position))
            except OSError:  # it exited since its last result: this frame cannot be measured
                worker.free_slots.append(slot)
                part.set_exception(VisionWorkerCrashed(f"vision worker {worker.index} exited"))
                self._on_exit(worker)
            else:
                worker.pending[frame_id] = _Pending(slot, part)
            parts.append(part)
        self.counters.frames_submitted_total += 1
        return asyncio.ensure_future(self._merged(parts))

    async def _merged(self, parts: list[asyncio.Future[list[FruitView]]]) -> list[FruitView]:
        """The parts' views as the frame's: lane and row back on the whole frame's scale."""
        results = await asyncio.gather(*parts)
        views: list[FruitView] = []
        for (l0, _, y0, _), part_views in zip(self._parts, results, strict=True):
            if l0 == 0:
                views += part_views
            else:
                views += [dataclasses.replace(v, lane=v.lane + l0, y_px=v.y_px + y0) for v in part_views]
        return views

    @property
    def in_flight(self) -> int:
        return sum(len(w.pending) for w in self._workers if w is not None)

    @property
    def workers_ready(self) -> int:
        return sum(1 for w in self._workers if w is not None and w.is_ready and not w.gone)

    def worker_pids(self) -> list[int | None]:
        """Each worker's process id (``None`` while it is being replaced)."""
        return [w.process.pid if w is not None and not w.gone else None for w in self._workers]

    # --------------------------------------------------------------- internals

    def _least_busy(self) -> _Worker | None:
        best: _Worker | None = None
        for worker in self._workers:
            if worker is None or worker.gone or not worker.is_ready or not worker.free_slots:
                continue
            if best is None or len(worker.free_slots) > len(best.free_slots):
                best = worker
        return best

    def _spawn(self, index: int) -> None:
        assert self._loop is not None and self._resources.shm is not None
        context = multiprocessing.get_context("spawn")  # never fork the threaded line process
        task_reader, task_writer = context.Pipe(duplex=False)
        result_reader, result_writer = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main,
            args=(
                self._part_spec(index), self._resources.shm.name, self._part_shape(index), self._frame_bytes,
                len(self._slot_arrays),
                task_reader, result_writer, self.opencv_threads, self.niceness,
            ),
            name=f"vision-worker-{index}",
            daemon=True,
        )
        self._resources.connections |= {task_writer, result_reader}
        try:
            process.start()
        finally:
            # the child has its own copies; ours must go, or its exit would not end the pipes
            task_reader.close()
            result_writer.close()
        self._resources.processes.add(process)
        os.set_blocking(result_reader.fileno(), False)
        slots = range(index * self.slots_per_worker, (index + 1) * self.slots_per_worker)
        worker = _Worker(index, process, task_writer, result_reader, self._loop.create_future(), list(reversed(slots)))
        self._workers[index] = worker
        self._reading[result_reader.fileno()] = worker
        self._loop.add_reader(result_reader.fileno(), self._on_readable, worker)

    def _respawn(self, index: int) -> None:
        """Start a replacement for worker ``index``; if the OS refuses (out of processes or
        memory), try again in ``restart_delay_s``."""
        self._restart_handles.pop(index, None)
        if self._closed or self._loop is None:
            return
        try:
            self._spawn(index)
        except OSError as exc:
            self.counters.worker_start_failures_total += 1
            log.error("vision worker %d could not be started: %s; retrying in %g s", index, exc, self.restart_delay_s)
            self._restart_handles[index] = self._loop.call_later(self.restart_delay_s, self._respawn, index)

    def _stop_reading(self, worker: _Worker) -> None:
        """Unregister the worker's result pipe and close our ends of its pipes."""
        fd = worker.results.fileno() if not worker.results.closed else -1
        if self._reading.pop(fd, None) is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(fd)
        for conn in (worker.tasks, worker.results):
            self._resources.connections.discard(conn)
            conn.close()

    def _retire(self, worker: _Worker) -> int | None:
        """Stop reading the worker and reap its process; its exit code."""
        worker.gone = True
        self._stop_reading(worker)
        process = worker.process
        # it has closed its pipe, so it is exiting or gone; one that lingers is of no use
        process.join(timeout=1.0)
        if process.is_alive():
            process.kill()
            process.join(timeout=5.0)
        code = process.exitcode
        self._resources.processes.discard(process)
        with contextlib.suppress(ValueError):
            process.close()
        return code

    def _fail_pending(self, worker: _Worker, error: VisionPoolError) -> None:
        for pending in worker.pending.values():
            self.counters.frames_failed_total += 1
            if not pending.future.done():
                pending.future.set_exception(error)
                if isinstance(error, VisionPoolClosed):
                    # still raised to whoever awaits it, but a frame nobody awaits at shutdown
                    # is expected, not worth asyncio's "exception never retrieved" warning
                    pending.future.exception()
        worker.pending.clear()

    def _on_readable(self, worker: _Worker) -> None:
        started_s, started_cpu_s = time.perf_counter(), time.thread_time()
        try:
            data = os.read(worker.results.fileno(), _READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # end of file: the worker has exited
            self._on_exit(worker)
            return
        buffer = worker.buffer
        buffer += data
        offset = 0
        while len(buffer) - offset >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, offset)
            end = offset + _HEADER.size + size
            if len(buffer) < end:
                break
            message = pickle.loads(memoryview(buffer)[offset + _HEADER.size : end])
            offset = end
            self._on_message(worker, message)
        del buffer[:offset]
        spent_s = time.perf_counter() - started_s
        self.counters.result_loop_s_total += spent_s
        self.counters.result_loop_s_max = max(self.counters.result_loop_s_max, spent_s)
        self.counters.result_loop_cpu_s_total += time.thread_time() - started_cpu_s

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "views" or kind == "error":
            pending = worker.pending.pop(message[1])
            worker.free_slots.append(pending.slot)
            if kind == "views":
                self.counters.frames_measured_total += 1
                if not pending.future.done():  # the caller may have cancelled it
                    pending.future.set_result(message[2])
                return
            _, frame_id, text, remote_traceback = message
            self.counters.frames_failed_total += 1
            if not pending.future.done():
                pending.future.set_exception(
                    VisionFrameError(f"vision worker {worker.index} failed on frame {frame_id}: {text}", remote_traceback)
                )
        elif kind == "ready":
            _, pid, warm_s = message
            log.info("vision worker %d (pid %d) ready: built and warmed in %.2f s", worker.index, pid, warm_s)
            worker.is_ready = True
            worker.ready.set_result(None)
        elif kind == "failed":  # the worker exits next; its end of file reaps it
            _, text, remote_traceback, pickled = message
            error = VisionWorkerStartError(f"vision worker {worker.index} could not build its measurer: {text}", remote_traceback)
            if pickled is not None:
                with contextlib.suppress(Exception):
                    error.__cause__ = pickle.loads(pickled)
            self._start_failed(worker, error)

    def _start_failed(self, worker: _Worker, error: VisionWorkerStartError) -> None:
        if worker.ready.done():
            return
        worker.ready.set_exception(error)
        if not self._started:
            return  # start() raises it
        worker.ready.exception()  # retrieved: logged here, the pool goes on one worker short
        self.counters.worker_start_failures_total += 1
        log.error("%s; retrying in %g s\n%s", error, self.restart_delay_s, error.remote_traceback)
        if not self._closed and self._loop is not None:
            self._restart_handles[worker.index] = self._loop.call_later(self.restart_delay_s, self._respawn, worker.index)

    def _on_exit(self, worker: _Worker) -> None:
        if worker.gone or self._closed:
            return
        pid = worker.process.pid
        code = self._retire(worker)
        if not worker.is_ready:
            self._start_failed(
                worker,
                VisionWorkerStartError(f"vision worker {worker.index} (pid {pid}) exited with code {code} before it was ready"),
            )
            return
        error = VisionWorkerCrashed(f"vision worker {worker.index} (pid {pid}) exited with code {code}")
        log.error("%s; %d frames in flight failed; starting a replacement", error, len(worker.pending))
        self._fail_pending(worker, error)
        self.counters.worker_restarts_total += 1
        self._respawn(worker.index)
