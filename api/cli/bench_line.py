"""``gradeline bench line``: the whole line against the simulated world, scored by the world's truth.

Three kinds of process, as on a real line PC: ``gradeline sim line`` (the world: PLC over
Modbus TCP, one weighing indicator per lane over TCP, the MJPEG camera), ``gradeline run``
(the line, with its real drivers pointed at the world) and, with ``--background-load``,
processes that keep that many cores busy. At the end the world's truth log (the fruit in
each cup, each PLC drop, each camera exposure, each ring write) is compared with the rows the
line stored. Nothing the line says about itself is used, except its own CPU time.

Scored cups: those that entered the camera's field after intake started and left it at
least half a second before intake stopped, so the line saw their whole pass.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from api.cli import CliParsers

_PITCH_MM = 110.0
_MM_PER_PX = 0.8
_BAND_PX = 160
# The camera's field along the belt: 640 px at 0.8 mm/px is 512 mm, 4.7 cups of 110 mm, so at one
# frame per cup every fruit is seen whole in 4-5 frames while its cup turns it 2-3 times. A
# wider field adds views of the same surface, and vision's time per frame grows with the width
# (docs/benchmarks.md measures both).
_WIDTH_PX = 640
_FPS = 12.0
_FIRST_OUTLET = 6
_SCALE_OFFSET = -10


def register(parsers: CliParsers) -> None:
    bench = parsers.bench.add_parser(
        "line", help="The line against the simulated world over real transports, scored by its truth log (JSON last)."
    )
    bench.add_argument("--lanes", type=int, default=8)
    bench.add_argument("--cups-per-second", type=float, default=12.0, help="Per lane.")
    bench.add_argument("--seconds", type=float, default=30.0, help="Time with intake on.")
    bench.add_argument("--background-load", type=float, default=0.0, help="Cores kept busy by other processes.")
    bench.add_argument("--fps", type=float, default=_FPS, help="Camera frames per second (one per trigger).")
    bench.add_argument("--width-px", type=int, default=_WIDTH_PX, help="Camera field along the belt, in pixels at 0.8 mm/px.")
    bench.add_argument("--vision-workers", type=int, default=2)
    bench.add_argument("--vision-split", choices=["lanes", "frames"], default="lanes")
    bench.add_argument("--database-url", help="Store (default: a fresh SQLite file).")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument("--keep", type=Path, help="Keep the truth log, configs and logs in this directory.")
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench)


def bench_config(
    lanes: int,
    cups_per_second: float,
    seed: int,
    database_url: str,
    vision_workers: int = 2,
    vision_split: str = "lanes",
    fps: float = _FPS,
    width_px: int = _WIDTH_PX,
) -> Any:
    """The line config both the world and the line are built from (apple, 110 mm cups, 0.8 mm/px)."""
    from api.config import parse_config

    outlets = [
        {"number": 1, "offset_cups": _FIRST_OUTLET, "quality_classes": ["extra"]},
        {"number": 2, "offset_cups": _FIRST_OUTLET + 2, "quality_classes": ["class_i"]},
        {"number": 3, "offset_cups": _FIRST_OUTLET + 4, "quality_classes": ["class_ii"]},
        {"number": 4, "offset_cups": _FIRST_OUTLET + 6, "role": "recheck"},
        {"number": 5, "offset_cups": _FIRST_OUTLET + 8, "role": "cull"},
    ]
    return parse_config(
        {
            "recipe": "apple",
            "line": {
                "lanes": lanes, "cups_per_second": cups_per_second, "cup_pitch_mm": _PITCH_MM,
                "scale_offset_cups": _SCALE_OFFSET,
            },
            "camera": {"geometry": {"width_px": width_px, "height_px": _BAND_PX * lanes, "fps": fps, "mm_per_px": _MM_PER_PX}},
            "vision": {"workers": vision_workers, "split": vision_split},
            "outlets": outlets,
            "database": {"url": database_url},
            "simulation": {"seed": seed},
            "api": {"host": "127.0.0.1", "port": 0},
        }
    )


def _bench(args: argparse.Namespace) -> int:
    result = run_bench(
        lanes=args.lanes, cups_per_second=args.cups_per_second, seconds=args.seconds,
        background_load=args.background_load, vision_workers=args.vision_workers, vision_split=args.vision_split,
        fps=args.fps, width_px=args.width_px,
        database_url=args.database_url, seed=args.seed, keep=args.keep,
    )
    if not args.json:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    print(json.dumps(result))
    return 0


def run_bench(
    *,
    lanes: int,
    cups_per_second: float,
    seconds: float,
    background_load: float = 0.0,
    vision_workers: int = 2,
    vision_split: str = "lanes",
    fps: float = _FPS,
    width_px: int = _WIDTH_PX,
    database_url: str | None = None,
    seed: int = 1,
    keep: Path | None = None,
) -> dict[str, Any]:
    from api.cli.line_harness import LineProcess, Truth, bench_token, stored_rows
    from api.cli.line_harness import background_load as busy
    from api.world import config_to_toml, line_config_for_world, start_world

    with tempfile.TemporaryDirectory(prefix="gradeline-bench-line-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{work / 'line.db'}"
        config = bench_config(lanes, cups_per_second, seed, url, vision_workers, vision_split, fps, width_px)
        with start_world(config, work / "truth") as world:
            banner = world.banner
            line_path = work / "line.toml"
            line_path.write_text(config_to_toml(line_config_for_world(config, banner)), encoding="utf-8")
            line = LineProcess(line_path, work / "line.log", token=bench_token(url))
            with busy(background_load):
                line.start()
                try:
                    t_start = time.monotonic()
                    line.start_intake()
                    cpu0, wall0 = line.cpu_seconds(), time.monotonic()
                    time.sleep(seconds)
                    cpu1, wall1 = line.cpu_seconds(), time.monotonic()
                    stages = line.get("/api/v1/line").get("latency_from_exposure")
                    final = line.stop_intake()
                    t_stop = time.monotonic()
                    # every cup decided before the stop passes its outlets, so its drop is logged
                    last_offset = max(o.offset_cups for o in config.outlets)
                    time.sleep((last_offset + 2) / cups_per_second + 0.5)
                finally:
                    line.terminate()
        truth = Truth.read(work / "truth")
        rows = stored_rows(url)
    # scored from the first cups that were both weighed and seen whole after intake started
    lead_cups = max(width_px / (_PITCH_MM / _MM_PER_PX), -_SCALE_OFFSET)
    return score(
        truth, rows, t_start=t_start + lead_cups / cups_per_second + 0.1, t_end=t_stop - 0.5,
        pitch_cups=banner.camera_trigger_pitch_cups, resolution_g=banner.scale.resolution_g,
        acknowledged=int(final["fruit_total"]),
    ) | {
        "bench": "line",
        "lanes": lanes,
        "cups_per_second_per_lane": cups_per_second,
        "seconds": seconds,
        "background_load_cores": background_load,
        "vision_workers": vision_workers,
        "vision_split": vision_split,
        "camera_fps": fps,
        "camera_width_px": width_px,
        "database": url.split(":", 1)[0],
        "cpu_cores": round((cpu1 - cpu0) / (wall1 - wall0), 3),
        # the line's own account of its last 500 frames: exposure to the end of each stage
        "line_stages_p50_ms": {k: v["p50_ms"] for k, v in (stages or {}).items()},
    }


def score(
    truth: Any, rows: list[Any], *, t_start: float, t_end: float, pitch_cups: float, resolution_g: float,
    acknowledged: int,
) -> dict[str, Any]:
    """The bench's figures from the truth log and the stored rows (see the module docstring)."""
    from api.cli.line_harness import percentile

    by_cup: dict[tuple[int, int], list[Any]] = {}
    for row in rows:
        by_cup.setdefault((row.lane, row.cup_index), []).append(row)
    window = {key: cup for key, cup in truth.cups.items() if t_start <= cup["t_s"] <= t_end}
    offered = {key for key, cup in window.items() if cup["fruit"]}
    recorded = [by_cup[key][0] for key in offered if key in by_cup]
    mis_sorts = 0
    contradicted = 0
    for key, drop in truth.drops.items():
        cup = truth.cups.get(key)
        if cup is None or cup["t_s"] < t_start - 5.0:
            continue  # before this run's intake
        stored = by_cup.get(key)
        if stored is None:
            mis_sorts += drop["outlet"] != 0  # sorted with no record
        elif drop["outlet"] != stored[0].outlet:
            mis_sorts += 1
            contradicted += drop["outlet"] == 0  # recorded as sorted, but recirculated
    weighed = [r for r in recorded if truth.cups[(r.lane, r.cup_index)].get("weighed", True)]
    wrong_weights = sum(
        1 for r in weighed
        if r.weight_g is not None and abs(r.weight_g - truth.cups[(r.lane, r.cup_index)]["plateau_weight_g"]) > resolution_g + 1e-6
    )
    latencies_ms = []
    line_latencies_ms = []
    for r in recorded:
        if r.late or r.frame_position_cups is None:
            continue
        line_latencies_ms.append(r.decision_latency_ms or 0.0)
        exposure = truth.exposures_s.get(round(r.frame_position_cups / pitch_cups))
        written = truth.writes_s.get((r.lane, r.cup_index))
        if exposure is not None and written is not None:
            latencies_ms.append((written - exposure) * 1000.0)
    n = len(recorded)
    late = sum(r.late for r in recorded)
    missing = sum(r.weight_g is None for r in weighed)
    duplicates = sum(len(v) - 1 for v in by_cup.values())
    outlets = Counter(r.outlet for r in recorded)

    def share(count: int) -> float | None:
        return round(count / n, 5) if n else None

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "fruit_offered": len(offered),
        "fruit_recorded": n,
        "mis_sorts": mis_sorts,
        "records_contradicting_drops": contradicted,
        "late_decisions": late,
        "late_fraction": share(late),
        "weights_missing": missing,
        "weights_missing_fraction": share(missing),
        "wrong_weights": wrong_weights,
        "lost_records": max(0, acknowledged - len(rows)),
        "duplicate_records": duplicates,
        "outlets": {str(k): v for k, v in sorted(outlets.items())},
        "decisions_timed": len(latencies_ms),
        "p50_decision_ms": ms(percentile(latencies_ms, 0.5)),
        "p99_decision_ms": ms(percentile(latencies_ms, 0.99)),
        "line_reported_p50_decision_ms": ms(percentile(line_latencies_ms, 0.5)),
        "fruit_per_second": round(n / (t_end - t_start), 1) if t_end > t_start else None,
        "all_fruit_recorded_fraction": round(n / len(offered), 5) if offered else None,
    }
