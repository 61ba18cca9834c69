"""``gradeline bench vision`` (speed), ``gradeline bench vision-accuracy`` (ground truth) and
``gradeline bench vision-pool`` (vision beside the event loop: threads against processes).

The first two are thin: they parse options, run the harnesses in ``vision.bench`` and print.
The pool bench's harness is below: it drives the line's two ways of running vision from an
asyncio loop, so it lives beside the command rather than in ``vision/``. The last stdout line
is always one JSON object; without ``--json`` a human summary comes first.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from typing import Any

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    speed = parsers.bench.add_parser(
        "vision",
        help="Frame pipeline speed on 1280x480 four-lane frames, one core, against a bare-OpenCV baseline.",
    )
    speed.add_argument("--json", action="store_true", help="Print only the JSON line.")
    speed.add_argument("--frames", type=int, default=40, help="Distinct frames per pass (default 40).")
    speed.add_argument("--repeats", type=int, default=7, help="Timed passes; medians are reported (default 7).")
    speed.add_argument("--seed", type=int, default=1)
    speed.add_argument("--product", default="apple", choices=["apple", "cherry", "mango", "pomegranate"])
    speed.add_argument(
        "--learn-background", action="store_true",
        help="Learn the belt from empty frames first (as the runtime can at start-up) instead of estimating it per frame.",
    )
    speed.set_defaults(func=_run_speed)

    acc = parsers.bench.add_parser(
        "vision-accuracy",
        help="Render fruit with exact truth, run pipeline and tracker, score the fused records.",
    )
    acc.add_argument("--json", action="store_true", help="Print only the JSON line.")
    acc.add_argument("--products", default="apple", help="Comma list of products (default apple).")
    acc.add_argument("--seeds", default="1,2,3", help="Comma list of seeds (default 1,2,3).")
    acc.add_argument("--cups-per-lane", type=int, default=45, help="Cups per lane per seed (default 45: 4 lanes x 3 seeds = 540 cups).")
    acc.add_argument(
        "--scene", choices=["plain", "realistic"], default="plain",
        help="plain: flat skin colours inside the colour boxes, defects outside them, orthographic, even light; "
        "realistic: skin and defect colours as on real fruit (bruises and russet inside the skin's classes), "
        "perspective from a camera 1 m up, vignetting, uneven light across lanes, a highlight per fruit.",
    )
    acc.add_argument(
        "--mm-per-px", type=float, default=0.8,
        help="Scale at the belt (default 0.8, the demo line's; the plain scene's targets were set at 0.3).",
    )
    acc.add_argument("--step-cups", type=float, default=0.25, help="Belt advance between frames, in cups.")
    acc.add_argument("--blur-px", type=float, default=0.7)
    acc.add_argument("--noise", type=float, default=2.0, help="Sensor noise sigma, 8-bit levels.")
    acc.add_argument("--drift", type=float, default=0.05, help="Lighting drift amplitude.")
    acc.add_argument("--defect-rate", type=float, default=0.3)
    acc.add_argument(
        "--learn-background", action="store_true",
        help="Learn the belt from empty frames first; by default it is estimated from every frame, as the line does.",
    )
    acc.set_defaults(func=_run_accuracy)

    pool = parsers.bench.add_parser(
        "vision-pool",
        help="In-thread vision (today's ThreadPoolExecutor) against the process pool: frames/s, latency, loop jitter.",
    )
    pool.add_argument("--json", action="store_true", help="Print only the JSON line.")
    pool.add_argument("--lanes", default="8,4", help="Comma list of lane counts, 160 px per lane, 1280 px wide (default 8,4).")
    pool.add_argument("--threads", default="2", help="Comma list of thread counts for in-thread vision (default 2, as today).")
    pool.add_argument("--workers", default="1,2,3", help="Comma list of pool worker counts (default 1,2,3).")
    pool.add_argument("--frames", type=int, default=24, help="Distinct frames rendered ahead per geometry (default 24).")
    pool.add_argument("--seconds", type=float, default=2.0, help="Timed seconds per run and round (default 2).")
    pool.add_argument("--fps", type=float, default=12.0, help="Camera rate of the paced runs; 0 skips them (default 12, the demo line's).")
    pool.add_argument(
        "--opencv-threads", type=int, default=1,
        help="OpenCV threads in each pool worker; 0 leaves OpenCV's default (default 1).",
    )
    pool.add_argument("--niceness", type=int, default=5, help="Added to each pool worker's nice value (default 5, the pool's).")
    pool.add_argument("--rounds", type=int, default=3, help="Interleaved rounds of every run; samples are pooled (default 3).")
    pool.add_argument("--seed", type=int, default=1)
    pool.set_defaults(func=_run_pool)


def _run_speed(args: argparse.Namespace) -> int:
    import numpy as np

    from simulators.fruit import CupTruth
    from vision.bench import bench_frames, bench_renderer, bench_speed

    frames = bench_frames(args.frames, seed=args.seed, product=args.product)
    empty: list[np.ndarray] = []
    if args.learn_background:
        renderer = bench_renderer(args.seed)
        empty = [renderer.render(-100.0 - i, lambda lane, k: CupTruth(lane, k, ())) for i in range(3)]
    result = bench_speed(frames, repeats=args.repeats, product=args.product, empty_frames=empty)
    result["product"] = args.product
    if not args.json:
        print(
            f"pipeline {result['fruit_views_per_s']} fruit-views/s, baseline {result['baseline_fruit_views_per_s']}"
            f" (ratio {result['ratio']}); {result['fruit_views_per_frame']} fruit per frame, medians of {args.repeats}"
        )
    print(json.dumps(result))
    return 0


def _run_accuracy(args: argparse.Namespace) -> int:
    from simulators.settings import SimulatedCameraSettings, SimulationSettings
    from vision.bench import evaluate_accuracy, summarise

    camera = SimulatedCameraSettings(blur_px=args.blur_px, noise_sigma=args.noise, lighting_drift=args.drift)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    products = [p for p in args.products.split(",") if p]
    started = time.perf_counter()
    per_product: dict[str, dict[str, float | int]] = {}
    all_scores = []
    for product in products:
        scores = []
        for seed in seeds:
            sim = SimulationSettings(seed=seed, defect_rate=args.defect_rate, empty_cup_rate=0.03, double_fruit_rate=0.02)
            scores.append(
                evaluate_accuracy(
                    product, seed, args.cups_per_lane, mm_per_px=args.mm_per_px, step_cups=args.step_cups,
                    camera=camera, simulation=sim, learn_background=args.learn_background, scene=args.scene,
                )
            )
        per_product[product] = summarise(scores)
        all_scores += scores
        if not args.json:
            print(product, json.dumps(per_product[product]))
    result: dict[str, object] = dict(summarise(all_scores))
    result.update(
        scene=args.scene, products=products, seeds=seeds, mm_per_px=args.mm_per_px, blur_px=args.blur_px,
        noise=args.noise, drift=args.drift, learned_background=args.learn_background,
        seconds=round(time.perf_counter() - started, 1),
    )
    if len(products) > 1:
        result["per_product"] = per_product
    print(json.dumps(result))
    return 0


def _run_pool(args: argparse.Namespace) -> int:
    import asyncio

    def counts(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v]

    result = asyncio.run(
        bench_vision_pool(
            lanes=counts(args.lanes), threads=counts(args.threads), workers=counts(args.workers),
            frames=args.frames, seconds=args.seconds, fps=args.fps,
            opencv_threads=args.opencv_threads or None, niceness=args.niceness, seed=args.seed,
            rounds=args.rounds,
        )
    )
    if not args.json:
        idle = result["idle_ticker"]
        print(f"idle loop: 1 ms ticker late p99 {idle['late_ms_p99']} ms, worst {idle['late_ms_max']} ms")
        print(
            f"{'frame':>10} {'vision':>11} {'load':>10} {'frames/s':>9} {'lat med':>8} {'lat p99':>8}"
            f" {'tick p99':>9} {'tick max':>9} {'dropped':>8}"
        )
        for run in result["runs"]:
            print(
                f"{run['frame']:>10} {run['vision']:>11} {run['load']:>10} {run['frames_per_s']:>9}"
                f" {run['latency_ms_median']:>8} {run['latency_ms_p99']:>8} {run['ticker_late_ms_p99']:>9}"
                f" {run['ticker_late_ms_max']:>9} {run['frames_dropped']:>8}"
            )
    print(json.dumps(result))
    return 0


# ----------------------------------------------------------------------------- vision-pool
#
# Both ways of running vision are driven from one asyncio loop, on the same prerendered
# frames, in the same run: in-thread (a ThreadPoolExecutor with one pipeline per thread, as
# the runtime does today) and ``vision.pool.VisionPool``. A 1 ms ticker on the loop measures
# how late the loop gets to its own timers while vision runs.

_LANE_PX = 160
_FRAME_WIDTH_PX = 1280
_MM_PER_PX = 0.8  # the demo line's apple geometry, as ``gradeline bench line``
_CUP_PITCH_MM = 110.0
_STEP_CUPS = 10.0 / 12.0  # 10 cups/s per lane seen at 12 frames/s
_SLOTS = 2  # frames in flight per thread or worker


def _pool_frames(lanes: int, count: int, seed: int) -> tuple[Any, list[tuple[float, Any]]]:
    """The apple recipe's measurer spec and ``count`` frames rendered ahead, with positions."""
    from api.compose import _measurer_spec
    from api.config import parse_config
    from grading.recipe import load_recipe
    from simulators.conveyor import SimulatedConveyor
    from simulators.scene import SceneGeometry, SceneRenderer
    from simulators.settings import SimulatedCameraSettings, SimulationSettings

    config = parse_config(
        {
            "recipe": "apple",
            "line": {"lanes": lanes, "cup_pitch_mm": _CUP_PITCH_MM},
            "camera": {"geometry": {"width_px": _FRAME_WIDTH_PX, "height_px": _LANE_PX * lanes, "mm_per_px": _MM_PER_PX}},
            "simulation": {"seed": seed},
        }
    )
    spec = _measurer_spec(config, load_recipe("apple"))
    geometry = SceneGeometry(_FRAME_WIDTH_PX, _LANE_PX * lanes, lanes, _MM_PER_PX, _CUP_PITCH_MM)
    conveyor = SimulatedConveyor("apple", SimulationSettings(seed=seed), lambda: 0.0)
    renderer = SceneRenderer(geometry, SimulatedCameraSettings(), seed)
    positions = [i * _STEP_CUPS for i in range(count)]
    return spec, [(p, renderer.render(p, conveyor.cup)) for p in positions]


class _ThreadVision:
    """Today's way: ``run_in_executor`` on a thread pool, one pipeline per thread."""

    def __init__(self, spec: Any, threads: int) -> None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.name = f"threads-{threads}"
        self._spec = spec
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vision-bench")
        self._local = threading.local()
        self._capacity = threads * _SLOTS
        self._in_flight = 0
        self.extra: dict[str, Any] = {}

    def _measurer(self) -> Any:
        measurer = getattr(self._local, "measurer", None)
        if measurer is None:
            measurer = self._local.measurer = self._spec()
        return measurer

    def _measure(self, image_bgr: Any, belt_position_cups: float) -> Any:
        return self._measurer().measure(image_bgr, belt_position_cups)

    async def start(self, frame_shape: tuple[int, int, int]) -> None:
        import asyncio
        import threading

        import numpy as np

        loop = asyncio.get_running_loop()
        barrier = threading.Barrier(self._threads)  # one build per thread: each waits for the others

        def build() -> None:
            self._measurer().measure(np.zeros(frame_shape, np.uint8), None)
            barrier.wait(timeout=120)

        started = time.perf_counter()
        await asyncio.gather(*(loop.run_in_executor(self._executor, build) for _ in range(self._threads)))
        self.extra["start_s"] = round(time.perf_counter() - started, 2)

    def submit(self, image_bgr: Any, belt_position_cups: float) -> Any:
        import asyncio

        if self._in_flight >= self._capacity:
            return None
        self._in_flight += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._measure, image_bgr, belt_position_cups)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Any) -> None:
        self._in_flight -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class _PoolVision:
    def __init__(self, spec: Any, workers: int, opencv_threads: int | None, niceness: int) -> None:
        self.name = f"processes-{workers}"
        self._spec = spec
        self._workers = workers
        self._opencv_threads = opencv_threads
        self._niceness = niceness
        self._pool: Any = None
        self.extra: dict[str, Any] = {}

    async def start(self, frame_shape: tuple[int, int, int]) -> None:
        from vision.pool import VisionPool

        self._pool = VisionPool(
            self._spec, self._workers, frame_shape, _SLOTS, opencv_threads=self._opencv_threads, niceness=self._niceness
        )
        started = time.perf_counter()
        await self._pool.start()
        self.extra["start_s"] = round(time.perf_counter() - started, 2)

    def submit(self, image_bgr: Any, belt_position_cups: float) -> Any:
        return self._pool.submit(image_bgr, belt_position_cups)

    @property
    def counters(self) -> Any:
        return self._pool.counters

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


@dataclass
class _Samples:
    """What the runs of one (vision, load) pair measured, pooled over the rounds."""

    lateness_s: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)  # loop time in submit (the pool: the copy into a slot)
    active_s: float = 0.0  # first submit to last result, summed over the rounds
    measured: int = 0
    dropped: int = 0
    views: int = 0
    result_loop_s: float = 0.0  # the pool's loop time on results, summed over the rounds
    result_loop_cpu_s: float = 0.0
    result_loop_s_max: float = 0.0
    pool: bool = False


def _ms(values_s: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(np.asarray(values_s) * 1e3, q)), 2)


async def _ticker(stop: Any, lateness_s: list[float]) -> None:
    """Sleep 1 ms at a time; each wake's lateness is how long the loop kept its timer waiting."""
    import asyncio

    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        lateness_s.append(time.perf_counter() - before - 0.001)


async def _timed_run(
    backend: Any, frames: list[tuple[float, Any]], seconds: float, fps: float, samples: _Samples
) -> None:
    """Feed frames for ``seconds``: as fast as the backend takes them (``fps`` 0) or at ``fps``,
    dropping a frame the backend refuses, as the runtime does."""
    import asyncio
    import functools

    counters = getattr(backend, "counters", None)
    if counters is not None:
        loop_s_before, loop_cpu_s_before = counters.result_loop_s_total, counters.result_loop_cpu_s_total
    stop = asyncio.Event()
    in_flight: set[Any] = set()
    last_done_s = 0.0

    def finished(future: Any, *, submitted_s: float) -> None:
        nonlocal last_done_s
        in_flight.discard(future)
        last_done_s = time.perf_counter()
        samples.latencies_s.append(last_done_s - submitted_s)
        samples.views += len(future.result())
        samples.measured += 1

    ticker = asyncio.create_task(_ticker(stop, samples.lateness_s))
    started_s = time.perf_counter()
    end_s = started_s + seconds
    due_s = started_s
    i = 0
    while True:
        now_s = time.perf_counter()
        if now_s >= end_s:
            break
        if fps > 0:
            if now_s < due_s:
                await asyncio.sleep(due_s - now_s)
                continue
            due_s += 1.0 / fps
        position, image = frames[i % len(frames)]
        submit_s = time.perf_counter()
        future = backend.submit(image, position)
        if future is None:
            if fps > 0:
                samples.dropped += 1
                i += 1
            else:  # saturated: wait for a slot and offer the same frame again
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            continue
        i += 1
        samples.submit_s.append(time.perf_counter() - submit_s)
        in_flight.add(future)
        future.add_done_callback(functools.partial(finished, submitted_s=submit_s))
    if in_flight:
        await asyncio.wait(in_flight)
    await asyncio.sleep(0)  # let the last done callbacks run
    stop.set()
    await ticker
    samples.active_s += last_done_s - started_s
    if counters is not None:
        samples.pool = True
        samples.result_loop_s += counters.result_loop_s_total - loop_s_before
        samples.result_loop_cpu_s += counters.result_loop_cpu_s_total - loop_cpu_s_before
        samples.result_loop_s_max = max(samples.result_loop_s_max, counters.result_loop_s_max)


def _figures(samples: _Samples) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "frames_per_s": round(samples.measured / samples.active_s, 1),
        "latency_ms_median": _ms(samples.latencies_s, 50),
        "latency_ms_p99": _ms(samples.latencies_s, 99),
        "ticker_late_ms_p99": _ms(samples.lateness_s, 99),
        "ticker_late_ms_max": _ms(samples.lateness_s, 100),
        "submit_ms_median": _ms(samples.submit_s, 50),
        "frames_measured": samples.measured,
        "frames_dropped": samples.dropped,
        "views_per_frame": round(samples.views / max(samples.measured, 1), 1),
    }
    if samples.pool:
        figures["result_loop_ms_mean"] = round(1e3 * samples.result_loop_s / max(samples.measured, 1), 3)
        figures["result_loop_cpu_ms_mean"] = round(1e3 * samples.result_loop_cpu_s / max(samples.measured, 1), 3)
        figures["result_loop_ms_max"] = round(1e3 * samples.result_loop_s_max, 2)
    return figures


async def bench_vision_pool(
    lanes: list[int], threads: list[int], workers: list[int], frames: int, seconds: float, fps: float,
    opencv_threads: int | None, niceness: int, seed: int, rounds: int,
) -> dict[str, Any]:
    """Every (vision, load) pair is run ``rounds`` times, the rounds interleaved so that what
    else the machine is doing falls on all of them alike; figures pool the rounds' samples."""
    import asyncio
    import os
    import platform

    import cv2

    stop = asyncio.Event()
    idle = _Samples()
    idle_task = asyncio.create_task(_ticker(stop, idle.lateness_s))
    await asyncio.sleep(1.0)
    stop.set()
    await idle_task
    runs: list[dict[str, Any]] = []
    loads = ([fps] if fps > 0 else []) + [0.0]
    for lane_count in lanes:
        spec, rendered = _pool_frames(lane_count, frames, seed)
        shape = rendered[0][1].shape
        backends: list[Any] = [_ThreadVision(spec, t) for t in threads]
        backends += [_PoolVision(spec, w, opencv_threads, niceness) for w in workers]
        samples = {(b.name, load): _Samples() for b in backends for load in loads}
        try:
            for backend in backends:
                await backend.start(shape)
                await _timed_run(backend, rendered, min(1.0, seconds), 0.0, _Samples())  # warm caches and pages
            for _ in range(rounds):
                for backend in backends:
                    for load in loads:
                        await _timed_run(backend, rendered, seconds, load, samples[(backend.name, load)])
        finally:
            for backend in backends:
                backend.close()
        for backend in backends:
            for load in loads:
                run: dict[str, Any] = {
                    "frame": f"{shape[1]}x{shape[0]}", "lanes": lane_count, "vision": backend.name,
                    "load": "saturated" if load <= 0 else f"{load:g} fps",
                }
                run.update(_figures(samples[(backend.name, load)]))
                run.update(backend.extra)
                runs.append(run)
    return {
        "bench": "vision-pool",
        "product": "apple",
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "opencv": cv2.__version__,
        "opencv_threads_per_worker": opencv_threads or "opencv default",
        "worker_niceness": niceness,
        "frames_rendered": frames,
        "seconds_per_run": seconds,
        "rounds": rounds,
        "idle_ticker": {"late_ms_p99": _ms(idle.lateness_s, 99), "late_ms_max": _ms(idle.lateness_s, 100)},
        "runs": runs,
    }
