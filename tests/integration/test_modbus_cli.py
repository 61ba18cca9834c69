"""``gradeline sim coldroom`` as its own process (TCP and RTU on a pty), and the bench's JSON."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from typing import Any

import pytest

from drivers.modbus.client import BusRegistry
from drivers.modbus.sensor import ModbusClimateSensor
from drivers.modbus.settings import (
    ModbusRtuSerialTransport,
    ModbusSensorSettings,
    ModbusTcpTransport,
)


def test_sim_coldroom_process_serves_tcp_and_rtu_pty() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "sim",
            "coldroom",
            "--port",
            "0",
            "--rtu-pty",
            "--rooms",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = json.loads(proc.stdout.readline())
        assert banner["unit_ids"] == [1, 2, 3] and banner["port"] > 0
        assert banner["rtu_device"].startswith("/dev/")

        async def read_both() -> list[Any]:
            buses = BusRegistry()
            try:
                out = []
                for transport in (
                    ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=banner["port"]),
                    ModbusRtuSerialTransport(kind="rtu", port=banner["rtu_device"]),
                ):
                    s = ModbusSensorSettings(
                        name="r3", transport=transport, device_id=3, profile="xy-md02"
                    )
                    out.append(await ModbusClimateSensor.create(s, buses).read())
                return out
            finally:
                buses.close()

        tcp, rtu = asyncio.run(asyncio.wait_for(read_both(), 30))
        # the demo rooms sit at 2.0 degC, 90 %RH until the scenario's events (room 3 has none)
        for r in (tcp, rtu):
            assert r.temperature_celsius == pytest.approx(2.0)
            assert r.relative_humidity_ratio == pytest.approx(0.9)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0


def test_bench_modbus_prints_json_last() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "bench",
            "modbus",
            "--sensors",
            "3",
            "--hz",
            "5",
            "--seconds",
            "1",
            "--windows",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sensors"] == 3 and result["sensors_up"] == 3 and result["failed_polls"] == 0
    assert result["polls_per_s"] > 0
    assert 0 <= result["cpu_fraction_of_one_core"] < 1
