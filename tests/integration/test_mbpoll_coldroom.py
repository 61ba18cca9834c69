"""An independent Modbus master (Debian's mbpoll) reads the cold-room simulator.

mbpoll's ``-r`` reference is 1-based: ``-r 2`` is protocol address 1, the XY-MD02
temperature register. Signed values print as ``65491 (-45)``. Missing mbpoll is a failure
(install it with ``make system-deps``), never a skip.
"""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest

from simulators.coldroom import ColdroomModel, ColdroomServer, ColdroomSimSettings, RoomSettings


def mbpoll_path() -> str:
    path = shutil.which("mbpoll")
    if path is None:
        pytest.fail("mbpoll is not installed: run `make system-deps` (apt-get install mbpoll)")
    return path


class FixedClock:
    def __call__(self) -> float:
        return 50.0


async def mbpoll(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        mbpoll_path(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"mbpoll {' '.join(args)} failed:\n{text}"
    return text


def values(text: str) -> dict[int, str]:
    return {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"^\[(\d+)\]:\s*(.+)$", text, re.MULTILINE)
    }


@pytest.mark.parametrize(
    ("layout", "table_flag", "first_ref"), [("xy-md02", "3", "2"), ("srth100", "4", "1")]
)
def test_mbpoll_reads_documented_temperature_registers(
    layout: str, table_flag: str, first_ref: str
) -> None:
    settings = ColdroomSimSettings(
        layout=layout,  # type: ignore[arg-type]
        rooms=[
            RoomSettings(name="chill", unit_id=1, setpoint_celsius=2.0, humidity_percent=90.0),
            RoomSettings(name="freeze", unit_id=5, setpoint_celsius=-4.5, humidity_percent=85.5),
        ],
    )

    async def body() -> None:
        server = ColdroomServer(ColdroomModel(settings, FixedClock()))
        port = await server.start_tcp()
        try:
            base = [
                "-m",
                "tcp",
                "-p",
                str(port),
                "-t",
                table_flag,
                "-r",
                first_ref,
                "-c",
                "2",
                "-1",
            ]
            room1 = values(await mbpoll(*base, "-a", "1", "127.0.0.1"))
            room5 = values(await mbpoll(*base, "-a", "5", "127.0.0.1"))
        finally:
            await server.stop()
        ref = int(first_ref)
        # temperature x0.1 degC (INT16), humidity x0.1 %RH
        assert room1 == {ref: "20", ref + 1: "900"}
        assert room5 == {ref: "65491 (-45)", ref + 1: "855"}

    asyncio.run(body())


def test_mbpoll_reads_the_simulator_over_rtu_on_a_pty() -> None:
    from simulators.modbus_faults import RtuPtyBridge

    settings = ColdroomSimSettings(
        rooms=[
            RoomSettings(name="freeze", unit_id=4, setpoint_celsius=-20.5, humidity_percent=80.0)
        ]
    )

    async def body() -> None:
        bridge = RtuPtyBridge()
        bridge.start()
        server = ColdroomServer(ColdroomModel(settings, FixedClock()))
        await server.start_serial(bridge.device_path, baudrate=9600)
        try:
            out = await mbpoll(
                "-m",
                "rtu",
                "-b",
                "9600",
                "-P",
                "none",
                "-a",
                "4",
                "-t",
                "3",
                "-r",
                "2",
                "-c",
                "2",
                "-1",
                "-o",
                "2",
                bridge.master_path,
            )
        finally:
            await server.stop()
            await bridge.stop()
        # 0xFF33 = -20.5 degC: the example from the XY-MD02 documentation
        assert values(out) == {2: "65331 (-205)", 3: "800"}

    asyncio.run(body())
