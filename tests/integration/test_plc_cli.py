"""``gradeline sim plc`` as its own process: banner, Modbus TCP, JSON-lines drop log."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from drivers.interfaces import OutletDecision
from drivers.modbus.plc import ModbusPlc
from drivers.modbus.settings import PlcModbusSettings


def test_sim_plc_process_fires_decisions_into_the_drop_log(tmp_path: Path) -> None:
    drops = tmp_path / "drops.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "sim",
            "plc",
            "--port",
            "0",
            "--lanes",
            "2",
            "--outlet",
            "1:3",
            "--outlet",
            "2:5",
            "--cups-per-second",
            "20",
            "--watchdog-timeout-s",
            "60",
            "--drop-log",
            str(drops),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = json.loads(proc.stdout.readline())
        assert banner["simulator"] == "plc" and banner["port"] > 0
        assert banner["outlets"] == {"1": 3, "2": 5} and banner["lanes"] == 2

        async def drive() -> set[tuple[int, int, int]]:
            plc = ModbusPlc.from_settings(
                PlcModbusSettings(kind="modbus", host="127.0.0.1", port=banner["port"]), lanes=2
            )
            await plc.open()
            try:
                await plc.heartbeat()
                status = await plc.read_status()
                # decide cups well ahead of outlet 1 (3 cups = 150 ms at 20 cups/s)
                first = status.cup_counter + 10
                decisions = [
                    OutletDecision(lane, first + i, 1 + (i + lane) % 2)
                    for lane in range(2)
                    for i in range(5)
                ]
                await plc.write_decisions(decisions)
                return {(d.lane, d.cup_index, d.outlet) for d in decisions}
            finally:
                await plc.close()

        expected = asyncio.run(drive())
        deadline = time.monotonic() + 20
        got: set[tuple[int, int, int]] = set()
        while not expected <= got:
            assert time.monotonic() < deadline, f"drops seen: {sorted(got)}"
            if drops.exists():
                got = {
                    (d["lane"], d["cup_index"], d["outlet"])
                    for d in map(json.loads, drops.read_text().splitlines())
                    if d["outlet"]
                }
            time.sleep(0.05)
        assert got == expected  # nothing else fired: every other cup recirculated
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0
