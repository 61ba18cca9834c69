"""CLI for the wire-level scale simulator and the scale driver benchmark.

``gradeline sim scale --protocol mt-sics|toledo|xk3190 (--tcp PORT | --pty)``: one simulated
weighing indicator on 127.0.0.1 (``--tcp 0`` picks a free port) or on a pty pair. It prints
one JSON line with its endpoint first (``url`` is what a driver's ``scale.ports`` entry takes),
then runs until interrupted or ``--duration-s`` has passed.

``gradeline bench scale``: figures for the serial scale drivers against the simulator (reading
rate, how late each reading is stamped after the simulator sent it, with and without a stalled
event loop, and outage detection/recovery); the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import time
from typing import Any

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    p = parsers.sim.add_parser("scale", help="A serial weighing indicator over TCP or a pty.")
    p.add_argument("--protocol", choices=["mt-sics", "toledo", "xk3190"], required=True)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--tcp", type=int, metavar="PORT", help="Listen on 127.0.0.1:PORT (0 = free port)."
    )
    where.add_argument(
        "--pty", action="store_true", help="Open a pty pair and print the slave path."
    )
    p.add_argument("--weight-g", type=float, default=0.0, help="Constant weight on the load cell.")
    p.add_argument(
        "--fruit-weights-g",
        type=_weights,
        default=None,
        help="Comma-separated fruit weights crossing the load cell, one per cup period, repeating.",
    )
    p.add_argument(
        "--cup-period-s", type=float, default=0.5, help="Time per cup for --fruit-weights-g."
    )
    p.add_argument("--noise-g", type=float, default=0.4, help="Weighing error sigma per fruit.")
    p.add_argument("--seed", type=int, default=0, help="Seed for noise and random faults.")
    p.add_argument(
        "--rate-hz",
        type=float,
        default=20.0,
        help="Frames per second: Toledo and XK3190 streams, and MT-SICS lines after SIR.",
    )
    p.add_argument(
        "--unit",
        choices=["g", "kg", "lb"],
        default=None,
        help="Display unit (default per protocol).",
    )
    p.add_argument(
        "--decimals", type=int, default=None, help="Display decimals (default per protocol)."
    )
    p.add_argument(
        "--garbage-rate", type=float, default=0.0, help="Share of frames preceded by garbage."
    )
    p.add_argument(
        "--bad-checksum-rate", type=float, default=0.0, help="Share of frames with a spoiled check."
    )
    p.add_argument(
        "--delay-s", type=float, default=0.0, help="Latency added before every frame or reply."
    )
    p.add_argument(
        "--duration-s",
        type=float,
        default=None,
        help="Stop after this long (default: run until killed).",
    )
    p.set_defaults(func=_run_sim)

    b = parsers.bench.add_parser("scale", help="Serial scale drivers against the simulator.")
    b.add_argument(
        "--reads", type=int, default=200, help="Readings to collect per protocol and mode."
    )
    b.add_argument("--outages", type=int, default=5, help="Device stop/restart cycles to time.")
    b.set_defaults(func=_run_bench)


def _weights(text: str) -> list[float]:
    try:
        weights = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from exc
    if not weights:
        raise argparse.ArgumentTypeError("need at least one weight")
    return weights


def _run_sim(args: argparse.Namespace) -> int:
    from simulators.faults import FaultInjector, FaultRates
    from simulators.scale_server import FruitSequence, ScaleSimulator, SettableWeight, WeightSource

    try:
        rates = FaultRates(
            garbage_rate=args.garbage_rate,
            bad_checksum_rate=args.bad_checksum_rate,
            delay_s=args.delay_s,
        )
        source: WeightSource
        if args.fruit_weights_g:
            source = FruitSequence(
                args.fruit_weights_g,
                cup_period_s=args.cup_period_s,
                noise_g=args.noise_g,
                seed=args.seed,
            )
        else:
            source = SettableWeight(args.weight_g)
        sim = ScaleSimulator(
            args.protocol,
            source,
            unit=args.unit,
            decimals=args.decimals,
            rate_hz=args.rate_hz,
            faults=FaultInjector(rates, seed=args.seed),
        )
    except ValueError as exc:
        print(f"gradeline sim scale: {exc}", file=sys.stderr)
        return 2

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with sim:
            endpoint: dict[str, Any] = {"protocol": args.protocol}
            if args.pty:
                endpoint["pty"] = endpoint["url"] = await sim.start_pty()
            else:
                endpoint["url"] = await sim.start_tcp(args.tcp)
                endpoint["port"] = sim.tcp_port
            print(json.dumps(endpoint), flush=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.duration_s):
                    await stop.wait()

    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"gradeline sim scale: {exc}", file=sys.stderr)
        return 1
    return 0


# -- benchmark -------------------------------------------------------------------------------

# Every way a line reads its indicators: (protocol, MT-SICS mode).
_CASES = (("toledo", "stream"), ("xk3190", "stream"), ("mt-sics", "stream"), ("mt-sics", "poll"))


class _CountingWeight:
    """1 g more on every sample, so each frame sent carries a weight no other frame has."""

    def __init__(self) -> None:
        self._next_g = 100.0

    def sample(self, t_s: float) -> tuple[float, bool]:
        weight_g, self._next_g = self._next_g, self._next_g + 1.0
        return weight_g, True


async def _stamp_lag(reads: int, protocol: str, mode: str, rate_hz: float) -> dict[str, float]:
    """Readings per second and how late each is stamped after the simulator sent it.

    The simulator runs on its own loop thread with a send log on the same monotonic clock as
    the driver. Half the readings are taken while this loop is blocked (``time.sleep``), as
    by a busy vision step: their stamps must not move.
    """
    from drivers.scales.factory import create_scale
    from drivers.scales.settings import SerialScaleSettings
    from simulators.scale_server import ThreadedScaleSimulator

    key = f"{protocol}_{mode}" if protocol == "mt-sics" else protocol
    with ThreadedScaleSimulator(
        protocol,  # type: ignore[arg-type]
        _CountingWeight(),
        rate_hz=rate_hz,
        clock=time.monotonic,
        keep_send_log=True,
    ) as sim:
        url = sim.start_tcp()
        scale = create_scale(
            "bench",
            url,
            SerialScaleSettings.model_validate(
                {"kind": protocol, "ports": [url], "mode": mode, "poll_interval_s": 1 / rate_hz}
            ),
            clock=time.monotonic,
        )
        await scale.open()
        try:
            free: list[Any] = []
            t0 = time.monotonic()
            while len(free) < reads // 2:
                await asyncio.sleep(0.05)
                free += scale.take_readings()
            rate = len(free) / (time.monotonic() - t0)
            stalled: list[Any] = []
            while len(stalled) < reads - reads // 2:
                time.sleep(0.5)  # the loop is blocked: nothing of ours runs on it
                stalled += scale.take_readings()
        finally:
            await scale.close()
        by_weight = {s.weight_g: s for s in sim.send_log() if s.weight_g is not None}

    def lags_ms(readings: list[Any]) -> list[float]:
        return [(r.t_s - by_weight[r.weight_g].t_s) * 1000 for r in readings]

    free_ms, stalled_ms = lags_ms(free), lags_ms(stalled)
    return {
        f"{key}_readings_per_s": rate,
        f"{key}_stamp_lag_median_ms": statistics.median(free_ms),
        f"{key}_stamp_lag_max_ms": max(free_ms),
        f"{key}_stamp_lag_stalled_loop_median_ms": statistics.median(stalled_ms),
        f"{key}_stamp_lag_stalled_loop_max_ms": max(stalled_ms),
    }


async def _outage_times(outages: int, protocol: str, mode: str, transport: str) -> dict[str, float]:
    """Time from device stop to ``is_up()`` false, and from restart to ``is_up()`` again.

    The device stays off for 0.5 s to 2.5 s, spread evenly over the outages, so the restart
    lands at different points of the reconnect backoff (a fixed off time would measure one
    point of the schedule only). Nobody polls: the reader thread notices on its own.
    """
    import logging

    from drivers.scales.factory import create_scale
    from drivers.scales.settings import SerialScaleSettings
    from simulators.scale_server import ScaleSimulator, SettableWeight

    logging.getLogger("drivers.scales").setLevel(logging.ERROR)
    timeout_s = 0.3
    sim = ScaleSimulator(protocol, SettableWeight(200.0), rate_hz=20.0)  # type: ignore[arg-type]

    async def start(port: int = 0) -> str:
        return await (sim.start_tcp(port) if transport == "tcp" else sim.start_rfc2217(port))

    url = await start()
    port = sim.tcp_port or 0
    scale = create_scale(
        "bench",
        url,
        SerialScaleSettings.model_validate(
            {"kind": protocol, "ports": [url], "timeout_s": timeout_s, "mode": mode}
        ),
    )
    await scale.open()

    async def until(condition: Any, limit_s: float = 10.0) -> float:
        t0 = time.perf_counter()
        async with asyncio.timeout(limit_s):
            while not condition():
                await asyncio.sleep(0.002)
        return time.perf_counter() - t0

    stale_s, recover_s = [], []
    try:
        await until(scale.is_up)
        for outage in range(outages):
            await sim.stop()
            stale_s.append(await until(lambda: not scale.is_up()))
            await asyncio.sleep(0.5 + 2.0 * outage / max(outages - 1, 1))  # the device is off
            await start(port)
            recover_s.append(await until(scale.is_up))
    finally:
        await scale.close()
        await sim.stop()
    key = f"{protocol}_{mode}_{transport}" if protocol == "mt-sics" else f"{protocol}_{transport}"
    return {
        f"{key}_down_after_stop_median_s": statistics.median(stale_s),
        f"{key}_down_after_stop_max_s": max(stale_s),
        f"{key}_up_after_restart_median_s": statistics.median(recover_s),
        f"{key}_up_after_restart_max_s": max(recover_s),
    }


def _run_bench(args: argparse.Namespace) -> int:
    async def bench() -> dict[str, Any]:
        result: dict[str, Any] = {"bench": "scale", "reads": args.reads, "outages": args.outages}
        result["rate_hz"] = 50.0
        for protocol, mode in _CASES:
            result |= await _stamp_lag(args.reads, protocol, mode, 50.0)
        result["timeout_s"] = 0.3
        for protocol, mode, transport in (
            *((protocol, mode, "tcp") for protocol, mode in _CASES),
            ("toledo", "stream", "rfc2217"),
        ):
            result |= await _outage_times(args.outages, protocol, mode, transport)
        return result

    result = asyncio.run(bench())
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0
