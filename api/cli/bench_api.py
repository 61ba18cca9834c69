"""``gradeline bench api``: the API under an integrator's load while the line grades, and what
that load costs the line.

Three processes, as on the line's PC: the simulated world (``gradeline sim line``: the PLC,
the scales and the camera over their real protocols), the line (``gradeline run``, its real
drivers pointed at the world, serving the API on 127.0.0.1), and the integrator, which sends
``GET /api/v1/line`` with an integrator token at a fixed rate, on a schedule that does not
wait for answers: each request's latency runs from its slot in the schedule, so a slow answer
that holds up the ones behind it counts against them too.

Two phases in the same run, each ``--seconds`` long: a baseline without the load, then the
load. Each reports the line's late decisions and missing weights, so the cost of the load is
read against the same line on the same machine a moment earlier.

The line's late decisions and missing weights are read from its API (``/api/v1/line``), before
and after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import queue
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    bench = parsers.bench.add_parser(
        "api", help="GET /api/v1/line at a fixed rate while the line grades; latency and the line's cost (JSON last line)."
    )
    bench.add_argument("--rps", type=float, default=200.0, help="Requests per second (default 200).")
    bench.add_argument("--seconds", type=float, default=10.0, help="Length of each phase, baseline and load (default 10).")
    bench.add_argument("--lanes", type=int, default=8, help="Apple lanes (default 8).")
    bench.add_argument("--cups-per-second", type=float, default=12.0, help="Per lane (default 12: 8 x 12 = 96 fruit/s).")
    bench.add_argument("--warmup-seconds", type=float, default=3.0, help="Grading before the baseline starts.")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument(
        "--stopped", action="store_true",
        help="Keep intake stopped: the same process and loop with nothing graded, for the API's own cost.",
    )
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    result = run_bench(
        rps=args.rps, seconds=args.seconds, lanes=args.lanes, cups_per_second=args.cups_per_second,
        warmup_seconds=args.warmup_seconds, seed=args.seed, stopped=args.stopped,
    )
    if not args.json:
        for key, value in result.items():
            print(f"{key:>40}: {value}")
    print(json.dumps(result))
    return 0


def _load(url: str, token: str, rps: float, seconds: float, results: Any) -> None:
    """The integrator, in its own process: a fixed schedule of GETs, latencies from each request's slot.

    Plain HTTP/1.1 over a few keep-alive connections, so the client costs little beside the
    server: a slot waits for a free connection, and that wait counts in its latency.
    """

    async def run() -> dict[str, Any]:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        request = (
            f"GET /api/v1/line HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        slots: asyncio.Queue[float | None] = asyncio.Queue()
        latencies_ms: list[float] = []
        errors = 0

        async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = next(
                int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            return status == b"200"

        async def connection() -> None:
            nonlocal errors
            reader, writer = await asyncio.open_connection(host, int(port))
            await exchange(reader, writer)  # warm up outside the schedule
            ready.release()
            while (slot_s := await slots.get()) is not None:
                try:
                    ok = await exchange(reader, writer)
                except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                latencies_ms.append((loop.time() - slot_s) * 1000.0)
                errors += 0 if ok else 1
            writer.close()

        connections = 16
        ready = asyncio.Semaphore(0)
        workers = [asyncio.create_task(connection()) for _ in range(connections)]
        for _ in range(connections):
            await ready.acquire()
        n = int(rps * seconds)
        t0 = loop.time() + 0.05
        for i in range(n):
            slot_s = t0 + i / rps
            delay_s = slot_s - loop.time()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            slots.put_nowait(slot_s)
        for _ in workers:
            slots.put_nowait(None)
        await asyncio.gather(*workers)
        return {"latencies_ms": latencies_ms, "errors": errors, "elapsed_s": loop.time() - t0}

    results.put(asyncio.run(run()))


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def run_bench(
    *,
    rps: float,
    seconds: float,
    lanes: int,
    cups_per_second: float,
    warmup_seconds: float,
    seed: int,
    stopped: bool = False,
) -> dict[str, Any]:
    from api.cli.bench_line import bench_config
    from api.cli.line_harness import LineProcess, bench_token
    from api.world import config_to_toml, line_config_for_world, start_world

    with tempfile.TemporaryDirectory(prefix="gradeline-bench-api-") as tmp:
        work = Path(tmp)
        url_db = f"sqlite:///{work / 'line.db'}"
        config = bench_config(lanes, cups_per_second, seed, url_db)
        with start_world(config, work / "truth") as world:
            line_path = work / "line.toml"
            line_path.write_text(config_to_toml(line_config_for_world(config, world.banner)), encoding="utf-8")
            line = LineProcess(line_path, work / "line.log", token=bench_token(url_db, "operator"))
            integrator = bench_token(url_db, "integrator", "bench-integrator")
            line.start()
            try:
                if not stopped:
                    line.start_intake()
                    deadline = time.monotonic() + 60
                    while line.get("/api/v1/line")["fruit_total"] == 0:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"the line graded no fruit:\n{line.log_tail()}")
                        time.sleep(0.05)
                    time.sleep(warmup_seconds)  # past the cups that were in the field at start

                def counters() -> tuple[int, int, int, float]:
                    c = line.get("/api/v1/line")
                    return c["fruit_total"], c["late_total"], c["weights_missing_total"], time.monotonic()

                before = counters()
                time.sleep(seconds)
                baseline = counters()
                context = multiprocessing.get_context("spawn")
                results = context.Queue()
                loader = context.Process(
                    target=_load, args=(line.base_url, integrator, rps, seconds, results), name="bench-api-load"
                )
                loader.start()
                load_started = counters()
                try:
                    load: dict[str, Any] = results.get(True, seconds + 120)
                except queue.Empty:
                    raise RuntimeError(
                        f"the load process gave no result (its exit code {loader.exitcode}, the line's "
                        f"{line.process.poll() if line.process else None}, at {line.base_url}); the line's log:\n"
                        f"{line.log_tail()}"
                    ) from None
                load_ended = counters()
                loader.join(30)
            finally:
                line.terminate()

    latencies = sorted(load["latencies_ms"])
    baseline_s = baseline[3] - before[3]
    load_s = load_ended[3] - load_started[3]
    return {
        "bench": "api",
        "endpoint": "GET /api/v1/line",
        "line": "stopped" if stopped else "grading",
        "token_role": "integrator",
        "rps_target": rps,
        "rps": round(len(latencies) / load["elapsed_s"], 1),
        "requests": len(latencies),
        "errors": load["errors"],
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "lanes": lanes,
        "cups_per_second_per_lane": cups_per_second,
        "fruit_offered_per_s": lanes * cups_per_second,
        "baseline_seconds": round(baseline_s, 2),
        "baseline_fruit_per_s": round((baseline[0] - before[0]) / baseline_s, 1),  # 0 with --stopped
        "baseline_late": baseline[1] - before[1],
        "baseline_weights_missing": baseline[2] - before[2],
        "load_seconds": round(load_s, 2),
        "load_fruit_per_s": round((load_ended[0] - load_started[0]) / load_s, 1),
        "load_late": load_ended[1] - load_started[1],
        "load_weights_missing": load_ended[2] - load_started[2],
    }
