"""CLI for the wire-level scale simulator and the scale driver benchmark.

``gradeline sim scale --protocol mt-sics|toledo|xk3190 (--tcp PORT | --pty)``: one simulated
weighing indicator on 127.0.0.1 (``--tcp 0`` picks a free port) or on a pty pair. It prints
one JSON line with its endpoint first (``url`` is what a driver's ``scale.ports`` entry takes),
then runs until interrupted or ``--duration-s`` has passed.

``gradeline bench scale``: figures for the serial scale drivers against the simulator; the
last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
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
        "--rate-hz", type=float, default=20.0, help="Frames per second (continuous protocols)."
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
    b.add_argument("--reads", type=int, default=200, help="MT-SICS round trips per transport.")
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


async def _mtsics_round_trips(reads: int, transport: str) -> dict[str, float]:
    """Median ``read_weight()`` time through the driver vs. the same SI exchange on a raw socket."""
    from drivers.scales.factory import create_scale
    from drivers.scales.settings import SerialScaleSettings
    from simulators.scale_server import ScaleSimulator, SettableWeight

    async with ScaleSimulator("mt-sics", SettableWeight(182.4)) as sim:
        url = await (sim.start_tcp() if transport == "tcp" else sim.start_pty())
        scale = create_scale(
            "bench",
            url,
            SerialScaleSettings.model_validate(
                {"kind": "mt-sics", "ports": [url], "timeout_s": 1.0}
            ),
        )
        await scale.open()
        driver_s = []
        try:
            for _ in range(reads):
                t0 = time.perf_counter()
                await scale.read_weight()
                driver_s.append(time.perf_counter() - t0)
        finally:
            await scale.close()
        result = {f"mtsics_{transport}_read_median_ms": statistics.median(driver_s) * 1000}
        if transport == "tcp":
            # Baseline: the same request/reply with a plain blocking socket in a worker thread,
            # i.e. what the wire and the simulator cost without the driver's layers.
            def raw_exchange(sock: socket.socket) -> None:
                sock.sendall(b"SI\r\n")
                data = b""
                while not data.endswith(b"\n"):
                    data += sock.recv(64)

            with socket.create_connection(("127.0.0.1", sim.tcp_port)) as sock:
                raw_s = []
                for _ in range(reads):
                    t0 = time.perf_counter()
                    await asyncio.to_thread(raw_exchange, sock)
                    raw_s.append(time.perf_counter() - t0)
            result["baseline_raw_socket_tcp_median_ms"] = statistics.median(raw_s) * 1000
        return result


async def _outage_times(outages: int, protocol: str, transport: str) -> dict[str, float]:
    """Time from device stop to stale state, and from restart to the next valid weight.

    The device stays off for 0.5 s to 2.5 s, spread evenly over the outages, so the restart
    lands at different points of the reconnect backoff (a fixed off time would measure one
    point of the schedule only).
    MT-SICS is polled every 50 ms (it has no stream); continuous protocols need no polling.
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
            {"kind": protocol, "ports": [url], "timeout_s": timeout_s}
        ),
    )
    await scale.open()

    async def poll() -> None:
        while True:
            with contextlib.suppress(Exception):
                await scale.read_weight()
            await asyncio.sleep(0.05)

    poller = asyncio.create_task(poll()) if protocol == "mt-sics" else None

    async def until(condition: Any, limit_s: float = 10.0) -> float:
        t0 = time.perf_counter()
        async with asyncio.timeout(limit_s):
            while not condition():
                await asyncio.sleep(0.002)
        return time.perf_counter() - t0

    stale_s, recover_s = [], []
    try:
        await until(lambda: scale.health.state == "up")
        for outage in range(outages):
            await sim.stop()
            stale_s.append(await until(lambda: scale.health.state == "stale"))
            await asyncio.sleep(0.5 + 2.0 * outage / max(outages - 1, 1))  # the device is off
            await start(port)
            recover_s.append(
                await until(lambda n=scale.health.valid_count: scale.health.valid_count > n)
            )
    finally:
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        await scale.close()
        await sim.stop()
    key = f"{protocol}_{transport}"
    return {
        f"{key}_stale_after_stop_median_s": statistics.median(stale_s),
        f"{key}_stale_after_stop_max_s": max(stale_s),
        f"{key}_valid_after_restart_median_s": statistics.median(recover_s),
        f"{key}_valid_after_restart_max_s": max(recover_s),
    }


def _run_bench(args: argparse.Namespace) -> int:
    async def bench() -> dict[str, Any]:
        result: dict[str, Any] = {"bench": "scale", "reads": args.reads, "outages": args.outages}
        result |= await _mtsics_round_trips(args.reads, "tcp")
        result |= await _mtsics_round_trips(args.reads, "pty")
        result["timeout_s"] = 0.3
        for protocol, transport in (
            ("toledo", "tcp"),
            ("xk3190", "tcp"),
            ("mt-sics", "tcp"),
            ("toledo", "rfc2217"),
        ):
            result |= await _outage_times(args.outages, protocol, transport)
        result["driver_overhead_tcp_median_ms"] = (
            result["mtsics_tcp_read_median_ms"] - result["baseline_raw_socket_tcp_median_ms"]
        )
        return result

    result = asyncio.run(bench())
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return 0
