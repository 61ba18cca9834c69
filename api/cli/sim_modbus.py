"""CLI for the Modbus simulators and the Modbus polling benchmark.

``gradeline sim coldroom``: cold rooms as Modbus T/RH sensors (TCP and/or RTU on a pty).
``gradeline sim plc``: the line PLC model over Modbus TCP, with a JSON-lines drop log.
``gradeline bench modbus``: CPU used by polling N simulated sensors (simulator in a subprocess).

Each simulator prints one JSON line with its endpoints first (so a parent process can read
the port picked for ``--port 0``), then runs until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    p = parsers.sim.add_parser(
        "coldroom", help="Cold rooms as Modbus temperature/humidity sensors."
    )
    p.add_argument("--host", default="127.0.0.1", help="Address to bind (loopback by default).")
    p.add_argument("--port", type=int, default=None, help="Modbus TCP port; 0 picks a free one.")
    p.add_argument(
        "--rtu-pty",
        action="store_true",
        help="Also serve Modbus RTU on a pty; prints the device path.",
    )
    p.add_argument(
        "--rooms",
        type=int,
        default=4,
        help="Number of rooms (unit ids 1..N) for the demo scenario.",
    )
    p.add_argument(
        "--layout", choices=["xy-md02", "srth100"], default="xy-md02", help="Register layout."
    )
    p.add_argument(
        "--scenario", type=Path, default=None, help="JSON file with a ColdroomSimSettings scenario."
    )
    p.add_argument(
        "--time-scale", type=float, default=1.0, help="Simulated seconds per real second."
    )
    p.set_defaults(func=_run_coldroom)

    p = parsers.sim.add_parser(
        "plc", help="The line PLC (encoder, ring buffer, outlets) over Modbus TCP."
    )
    p.add_argument("--host", default="127.0.0.1", help="Address to bind (loopback by default).")
    p.add_argument("--port", type=int, default=0, help="Modbus TCP port; 0 picks a free one.")
    p.add_argument("--device-id", type=int, default=1, help="Modbus unit id.")
    p.add_argument(
        "--config", type=Path, default=None, help="Line config TOML for lanes, outlets and speed."
    )
    p.add_argument("--lanes", type=int, default=None, help="Override the number of lanes.")
    p.add_argument(
        "--outlet",
        action="append",
        default=None,
        metavar="N:OFFSET",
        help="Outlet number and offset in cups (repeat).",
    )
    p.add_argument("--cups-per-second", type=float, default=None, help="Belt speed.")
    p.add_argument("--ring-size", type=int, default=256, help="Ring slots per lane (power of two).")
    p.add_argument("--watchdog-timeout-s", type=float, default=2.0, help="Watchdog timeout.")
    p.add_argument(
        "--drop-log", type=Path, default=None, help="Append every drop as a JSON line to this file."
    )
    p.set_defaults(func=_run_plc)

    p = parsers.bench.add_parser("modbus", help="CPU used polling N simulated Modbus sensors.")
    p.add_argument(
        "--sensors", type=int, default=64, help="Number of sensors (unit ids on one simulator)."
    )
    p.add_argument("--hz", type=float, default=1.0, help="Polls per second per sensor.")
    p.add_argument("--seconds", type=float, default=12.0, help="Measured duration.")
    p.add_argument(
        "--windows",
        type=int,
        default=3,
        help="Split the run into this many windows; report medians.",
    )
    p.add_argument("--json", action="store_true", help="Print only the JSON line.")
    p.set_defaults(func=_run_bench)


# -- simulators ----------------------------------------------------------------------------


def _scaled_clock(scale: float) -> Callable[[], float]:
    t0 = time.monotonic()
    return lambda: t0 + (time.monotonic() - t0) * scale


async def _serve_until_signal(banner: dict[str, object], stop: Callable[[], object]) -> None:
    print(json.dumps(banner), flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    result = stop()
    if asyncio.iscoroutine(result):
        await result


def _run_coldroom(args: argparse.Namespace) -> int:
    from simulators.coldroom import (
        ColdroomModel,
        ColdroomServer,
        ColdroomSimSettings,
        demo_settings,
    )
    from simulators.modbus_faults import RtuPtyBridge

    if args.port is None and not args.rtu_pty:
        print("gradeline sim coldroom: give --port PORT and/or --rtu-pty", file=sys.stderr)
        return 2
    if args.scenario is not None:
        settings = ColdroomSimSettings.model_validate_json(
            args.scenario.read_text(encoding="utf-8")
        )
    else:
        settings = demo_settings(args.rooms, args.layout)

    async def main() -> None:
        model = ColdroomModel(settings, _scaled_clock(args.time_scale))
        banner: dict[str, object] = {
            "simulator": "coldroom",
            "layout": settings.layout,
            "unit_ids": sorted(model.rooms),
        }
        servers: list[ColdroomServer] = []
        bridge: RtuPtyBridge | None = None
        if args.port is not None:
            tcp = ColdroomServer(model)
            banner["host"] = args.host
            banner["port"] = await tcp.start_tcp(args.host, args.port)
            servers.append(tcp)
        if args.rtu_pty:
            bridge = RtuPtyBridge()
            bridge.start()
            rtu = ColdroomServer(model)
            await rtu.start_serial(bridge.device_path)
            servers.append(rtu)
            banner["rtu_device"] = bridge.master_path

        async def stop() -> None:
            for s in servers:
                await s.stop()
            if bridge is not None:
                await bridge.stop()

        await _serve_until_signal(banner, stop)

    asyncio.run(main())
    return 0


def _plc_geometry(args: argparse.Namespace) -> tuple[int, dict[int, int], float]:
    from api.config import load_config

    config = load_config(args.config)
    lanes = args.lanes if args.lanes is not None else config.line.lanes
    speed = (
        args.cups_per_second if args.cups_per_second is not None else config.line.cups_per_second
    )
    if args.outlet:
        outlets = {}
        for item in args.outlet:
            number, _, offset = item.partition(":")
            outlets[int(number)] = int(offset)
    else:
        outlets = {o.number: o.offset_cups for o in config.outlets}
    return lanes, outlets, speed


def _run_plc(args: argparse.Namespace) -> int:
    from simulators.plc import PlcModel
    from simulators.plc_server import PlcServer

    lanes, outlets, speed = _plc_geometry(args)

    async def main() -> None:
        model = PlcModel(
            lanes,
            outlets,
            speed,
            time.monotonic,
            ring_size=args.ring_size,
            watchdog_timeout_s=args.watchdog_timeout_s,
        )
        server = PlcServer(model, device_id=args.device_id, drop_log_path=args.drop_log)
        port = await server.start(args.host, args.port)
        banner = {
            "simulator": "plc",
            "host": args.host,
            "port": port,
            "device_id": args.device_id,
            "lanes": lanes,
            "outlets": {str(k): v for k, v in sorted(outlets.items())},
            "cups_per_second": speed,
            "ring_size": args.ring_size,
            "drop_log": str(args.drop_log) if args.drop_log else None,
        }
        await _serve_until_signal(banner, server.stop)

    asyncio.run(main())
    return 0


# -- benchmark -----------------------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _start_sim_subprocess(rooms: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "sim", "coldroom", "--port", "0", "--rooms", str(rooms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("coldroom simulator exited before printing its port")
    return proc, int(json.loads(line)["port"])


def measure_polling(
    sensors: int, hz: float, seconds: float, windows: int, port: int, sim_pid: int | None
) -> dict[str, object]:
    """Poll ``sensors`` unit ids on ``port`` at ``hz`` for ``seconds``; CPU per window."""
    from drivers.modbus.sensor import build_sensor_poller
    from drivers.modbus.settings import ModbusSensorSettings, ModbusTcpTransport

    async def main() -> dict[str, object]:
        transport = ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=port)
        poller, buses = build_sensor_poller(
            [
                ModbusSensorSettings(
                    name=f"room-{i}",
                    transport=transport,
                    device_id=i,
                    profile="xy-md02",
                    poll_interval_s=1.0 / hz,
                )
                for i in range(1, sensors + 1)
            ]
        )

        # Baseline: this process with its event loop idle, same window length.
        window_s = seconds / windows
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(min(window_s, 2.0))
        baseline = (time.process_time() - c0) / (time.perf_counter() - w0)

        poller.start()
        await asyncio.sleep(min(1.0, 1.0 / hz))  # connect and first polls before measuring
        fractions, rates, sim_fractions = [], [], []
        for _ in range(windows):
            polls0 = sum(h.polls for h in poller.health.values())
            c0, w0 = time.process_time(), time.perf_counter()
            s0 = _proc_cpu_s(sim_pid) if sim_pid else 0.0
            await asyncio.sleep(window_s)
            wall = time.perf_counter() - w0
            fractions.append((time.process_time() - c0) / wall)
            rates.append((sum(h.polls for h in poller.health.values()) - polls0) / wall)
            if sim_pid:
                sim_fractions.append((_proc_cpu_s(sim_pid) - s0) / wall)
        await poller.stop()
        failures = sum(h.failures for h in poller.health.values())
        up = sum(1 for s in poller.sensors if poller.state(s.name) == "up")
        buses.close()
        return {
            "bench": "modbus",
            "sensors": sensors,
            "hz": hz,
            "seconds": seconds,
            "windows": windows,
            "polls_per_s": round(statistics.median(rates), 2),
            "cpu_fraction_of_one_core": round(statistics.median(fractions), 5),
            "cpu_fraction_windows": [round(f, 5) for f in fractions],
            "baseline_idle_cpu_fraction": round(baseline, 5),
            "simulator_cpu_fraction": round(statistics.median(sim_fractions), 5)
            if sim_fractions
            else None,
            "failed_polls": failures,
            "sensors_up": up,
        }

    return asyncio.run(main())


def _run_bench(args: argparse.Namespace) -> int:
    if not 1 <= args.sensors <= 247:
        print("--sensors must be 1..247 (Modbus unit ids)", file=sys.stderr)
        return 2
    proc, port = _start_sim_subprocess(args.sensors)
    try:
        result = measure_polling(
            args.sensors, args.hz, args.seconds, max(1, args.windows), port, proc.pid
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(Exception):
            if proc.stdout:
                proc.stdout.close()
    if not args.json:
        print(
            f"polled {result['sensors']} sensors at {result['hz']} Hz: {result['polls_per_s']} polls/s, "
            f"polling side {float(str(result['cpu_fraction_of_one_core'])) * 100:.2f}% of one core "
            f"(idle baseline {float(str(result['baseline_idle_cpu_fraction'])) * 100:.2f}%)"
        )
    print(json.dumps(result))
    return 0
