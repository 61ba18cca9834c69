"""``gradeline bench line``: the whole line keeping up with a belt, end to end.

Frames are rendered before the clock starts and replayed in real time, so the figure is what
the line costs (vision, tracking, weighing, grading, PLC writes, storage), not the simulator's
drawing. Reported: graded fruit per second against the fruit the belt offered, the share of late
decisions, decision latency, and CPU; in the same run, vision alone on the same frames gives the
capacity baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from api.cli import CliParsers

# (cup pitch mm, mm per px, lane band px, camera fps, first outlet offset in cups)
_PRODUCTS: dict[str, tuple[float, float, int, float, int]] = {
    "apple": (110.0, 0.8, 160, 12.0, 6),
    "cherry": (50.0, 0.4, 112, 12.0, 20),
}
_DEFAULTS = {"apple": (4, 10.0), "cherry": (8, 32.0)}  # lanes, cups per second per lane


def register(parsers: CliParsers) -> None:
    bench = parsers.bench.add_parser("line", help="End-to-end line throughput and decision latency (JSON last line).")
    bench.add_argument("--product", choices=sorted(_PRODUCTS), default="apple")
    bench.add_argument("--lanes", type=int, help="Lanes (default: apple 4, cherry 8).")
    bench.add_argument("--cups-per-second", type=float, help="Per lane (default: apple 10, cherry 32).")
    bench.add_argument("--seconds", type=float, default=8.0, help="Belt time replayed.")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    result = asyncio.run(run_bench(args.product, args.lanes, args.cups_per_second, args.seconds, args.seed))
    if not args.json:
        for key, value in result.items():
            print(f"{key:>36}: {value}")
    print(json.dumps(result))
    return 0


async def run_bench(
    product: str, lanes: int | None, cups_per_second: float | None, seconds: float, seed: int
) -> dict[str, Any]:
    from sqlalchemy import select

    from api.compose import build_devices, open_line
    from grading.config import parse_config
    from grading.recipe import load_recipe
    from grading.schema import fruit
    from simulators.conveyor import PrerenderedCamera, SimulatedConveyor
    from simulators.scene import SceneGeometry, SceneRenderer
    from vision.pipeline import FramePipeline

    pitch_mm, mm_per_px, band_px, fps, first_outlet = _PRODUCTS[product]
    lanes = lanes or _DEFAULTS[product][0]
    cups_per_second = cups_per_second or _DEFAULTS[product][1]
    outlets = [
        {"number": 1, "offset_cups": first_outlet, "quality_classes": ["extra"]},
        {"number": 2, "offset_cups": first_outlet + 2, "quality_classes": ["class_i"]},
        {"number": 3, "offset_cups": first_outlet + 4, "quality_classes": ["class_ii"]},
        {"number": 4, "offset_cups": first_outlet + 6, "role": "recheck"},
        {"number": 5, "offset_cups": first_outlet + 8, "role": "cull"},
    ]
    with tempfile.TemporaryDirectory(prefix="gradeline-bench-") as tmp:
        config = parse_config(
            {
                "recipe": product,
                "line": {"lanes": lanes, "cups_per_second": cups_per_second, "cup_pitch_mm": pitch_mm},
                "camera": {"geometry": {"width_px": 1280, "height_px": band_px * lanes, "fps": fps, "mm_per_px": mm_per_px}},
                "outlets": outlets,
                "database": {"url": f"sqlite:///{Path(tmp) / 'bench.db'}"},
                "simulation": {"seed": seed},
                "plc": {"decision_margin_cups": 1.0},
            }
        )
        recipe = load_recipe(product)
        g = config.camera.geometry
        geometry = SceneGeometry(g.width_px, g.height_px, lanes, mm_per_px, pitch_mm)
        truth = SimulatedConveyor(product, config.simulation, lambda: 0.0)
        renderer = SceneRenderer(geometry, config.camera.device, seed=seed)  # type: ignore[arg-type]
        n_frames = int(seconds * fps)
        positions = [cups_per_second * i / fps for i in range(n_frames)]
        frames = [(p, renderer.render(p, truth.cup)) for p in positions]

        # Baseline, same frames, same process: vision alone, one thread, as fast as it goes.
        from api.compose import _vision_settings

        pipeline = FramePipeline(_vision_settings(config, recipe))
        t0 = time.perf_counter()
        views = sum(len(pipeline.measure(image)) for _, image in frames)
        vision_only_s = time.perf_counter() - t0

        devices = build_devices(config, recipe, time.monotonic)
        plc_model = devices.simulation.plc_model if devices.simulation else None
        assert plc_model is not None
        plc_model.stop()  # the belt starts when the first frame is due, so frames and encoder agree
        devices.camera = PrerenderedCamera(frames, fps, time.monotonic, on_open=plc_model.start)

        cpu0, wall0 = time.process_time(), time.monotonic()
        async with open_line(config, devices=devices) as handle:
            runtime = handle.runtime
            deadline = time.monotonic() + seconds + 10
            while runtime.counters.frames_total + runtime.counters.frames_dropped_total < n_frames:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
            counters = runtime.counters
            frames_measured, frames_dropped = counters.frames_total, counters.frames_dropped_total
        with handle.engine.connect() as conn:
            rows = conn.execute(select(fruit.c.lane, fruit.c.cup_index, fruit.c.late, fruit.c.decision_latency_ms)).all()
        handle.engine.dispose()

    # Cups that entered the field after the first frame and left it before the last: the line
    # saw the whole of their pass, so each fruit-carrying one must have exactly one record.
    field_cups = geometry.width_px / geometry.pitch_px
    first_cup = math.ceil(positions[0] + field_cups + 0.5)
    last_cup = math.floor(positions[-1] - 0.5)
    window = range(first_cup, last_cup + 1)
    offered = {(lane, k) for lane in range(lanes) for k in window if truth.cup(lane, k).fruit}
    graded = [r for r in rows if (r.lane, r.cup_index) in offered]
    latencies = sorted(r.decision_latency_ms for r in graded)
    window_s = len(window) / cups_per_second
    return {
        "bench": "line",
        "product": product,
        "lanes": lanes,
        "cups_per_second_per_lane": cups_per_second,
        "camera_fps": fps,
        "fruit_offered": len(offered),
        "fruit_graded": len(graded),
        "fruit_offered_per_s": round(len(offered) / window_s, 1),
        "fruit_graded_per_s": round(len(graded) / window_s, 1),
        "keep_up_ratio": round(len(graded) / len(offered), 4) if offered else None,
        "late_fraction": round(sum(r.late for r in graded) / len(graded), 4) if graded else None,
        "decision_latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "decision_latency_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
        "frames": n_frames,
        "frames_measured": frames_measured,
        "frames_dropped": frames_dropped,
        "cpu_fraction_of_one_core": round(cpu_s / wall_s, 3),
        "baseline_vision_only_fruit_views_per_s": round(views / vision_only_s, 1),
        "line_fruit_views_per_s": round(views * frames_measured / n_frames / wall_s, 1),
    }
