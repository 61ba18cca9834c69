"""``gradeline bench crash``: SIGKILL the line while it grades, restart it, and count what was lost.

The simulated world runs throughout (its belt never stops). The line process is killed with
SIGKILL at a random moment while fruit are being graded, ``--cycles`` times, and started
again on the same database each time. Every cup the PLC dropped at an outlet must have a
record (record before you sort), no cup may be recorded twice, and a record should not
claim an outlet its cup was not dropped at.

The random kill moments are drawn from ``--seed``, so a run can be repeated.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    bench = parsers.bench.add_parser(
        "crash", help="Kill the line with SIGKILL while it grades, restart it, compare drops and records (JSON last)."
    )
    bench.add_argument("--cycles", type=int, default=20)
    bench.add_argument("--lanes", type=int, default=4)
    bench.add_argument("--cups-per-second", type=float, default=10.0, help="Per lane.")
    bench.add_argument("--min-run-s", type=float, default=0.5, help="Shortest grading time before a kill.")
    bench.add_argument("--max-run-s", type=float, default=3.0, help="Longest grading time before a kill.")
    bench.add_argument("--database-url", help="Store (default: a fresh SQLite file).")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument("--keep", type=Path, help="Keep the truth log, configs and logs in this directory.")
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    result = run_crash_bench(
        cycles=args.cycles, lanes=args.lanes, cups_per_second=args.cups_per_second,
        min_run_s=args.min_run_s, max_run_s=args.max_run_s, database_url=args.database_url,
        seed=args.seed, keep=args.keep,
    )
    if not args.json:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    print(json.dumps(result))
    return 0


def run_crash_bench(
    *,
    cycles: int,
    lanes: int = 4,
    cups_per_second: float = 10.0,
    min_run_s: float = 0.5,
    max_run_s: float = 3.0,
    database_url: str | None = None,
    seed: int = 1,
    keep: Path | None = None,
) -> dict[str, Any]:
    from api.cli.bench_line import bench_config
    from api.cli.line_harness import LineProcess, Truth, bench_token, stored_rows
    from api.world import config_to_toml, line_config_for_world, start_world

    rng = random.Random(seed)
    per_cycle: list[dict[str, int]] = []
    with tempfile.TemporaryDirectory(prefix="gradeline-bench-crash-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{work / 'line.db'}"
        config = bench_config(lanes, cups_per_second, seed, url)
        last_offset = max(o.offset_cups for o in config.outlets)
        with start_world(config, work / "truth") as world:
            line_path = work / "line.toml"
            line_path.write_text(config_to_toml(line_config_for_world(config, world.banner)), encoding="utf-8")
            line = LineProcess(line_path, work / "line.log", token=bench_token(url))
            t_first = time.monotonic()
            for _ in range(cycles):
                line.start()
                line.start_intake()
                _wait_for_grading(line)
                time.sleep(rng.uniform(min_run_s, max_run_s))
                killed_s = time.monotonic()
                line.kill()
                # the cups the killed line decided have passed their outlets once the belt has
                # moved past the last one; then their drops are all in the log
                time.sleep((last_offset + 2) / cups_per_second + 0.3)
                per_cycle.append(_compare(Truth.read(work / "truth"), stored_rows(url), before_s=killed_s))
            # a last, clean run: it must still start and grade after the last kill
            line.start()
            line.start_intake()
            _wait_for_grading(line)
            line.stop_intake()
            time.sleep((last_offset + 2) / cups_per_second + 0.3)
            line.terminate()
        truth = Truth.read(work / "truth")
        rows = stored_rows(url)
    totals = _compare(truth, rows, after_s=t_first)
    return {
        "bench": "crash",
        "cycles": cycles,
        "lanes": lanes,
        "cups_per_second_per_lane": cups_per_second,
        "records": len(rows),
        **totals,
        "dropped_without_record_per_cycle_max": max((c["dropped_without_record"] for c in per_cycle), default=0),
    }


def _wait_for_grading(line: Any, timeout_s: float = 60.0) -> None:
    """Until the line has committed a fruit record since it started."""
    deadline = time.monotonic() + timeout_s
    while line.get("/api/v1/line")["fruit_total"] < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the line graded nothing within {timeout_s} s:\n{line.log_tail()}")
        time.sleep(0.05)


def _compare(truth: Any, rows: list[Any], *, before_s: float | None = None, after_s: float | None = None) -> dict[str, int]:
    """Drops (up to ``before_s``, from ``after_s``) against the stored rows."""
    by_cup: dict[tuple[int, int], list[Any]] = {}
    for row in rows:
        by_cup.setdefault((row.lane, row.cup_index), []).append(row)
    dropped = without = contradicting = 0
    for key, drop in truth.drops.items():
        if before_s is not None and drop["t_s"] > before_s:
            continue
        if after_s is not None and drop["t_s"] < after_s:
            continue
        stored = by_cup.get(key)
        if drop["outlet"] != 0:
            dropped += 1
            without += stored is None
        if stored is not None and not stored[0].late and stored[0].outlet != drop["outlet"]:
            contradicting += 1
    return {
        "cups_dropped_at_outlets": dropped,
        "dropped_without_record": without,
        "duplicate_records": sum(len(v) - 1 for v in by_cup.values()),
        "records_contradicting_drops": contradicting,
    }
