"""ModbusPlc against the PLC simulator over Modbus TCP, on a fake clock.

Decisions go through the real driver and the real wire; the simulator's drop log says which
cup fired which outlet. The clock is advanced by the test, never slept on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.interfaces import OutletDecision
from drivers.modbus.errors import ModbusConfigError, ModbusExceptionResponse
from drivers.modbus.plc import ModbusPlc
from drivers.modbus.settings import PlcModbusSettings
from simulators.plc import PlcModel
from simulators.plc_server import PlcServer

OUTLETS = {1: 6, 2: 8, 3: 10, 4: 12, 5: 14}
LANES = 4


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


Body = Callable[[ModbusPlc, PlcModel, FakeClock, PlcServer], Awaitable[None]]


def with_plc(
    body: Body,
    *,
    watchdog_s: float = 1e6,
    ring: int = 256,
    speed: float = 10.0,
    drop_log: Path | None = None,
    trigger_pitch: float | None = None,
) -> None:
    async def main() -> None:
        clock = FakeClock()
        model = PlcModel(
            LANES,
            OUTLETS,
            speed,
            clock,
            ring_size=ring,
            watchdog_timeout_s=watchdog_s,
            camera_trigger_pitch_cups=trigger_pitch,
        )
        server = PlcServer(model, drop_log_path=drop_log)
        port = await server.start()
        plc = ModbusPlc.from_settings(
            PlcModbusSettings(kind="modbus", host="127.0.0.1", port=port), lanes=LANES
        )
        try:
            await plc.open()
            await body(plc, model, clock, server)
        finally:
            await plc.close()
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def fired(model: PlcModel) -> set[tuple[int, int, int]]:
    return {(e.lane, e.cup_index, e.outlet) for e in model.drop_log if e.outlet}


def test_identity_status_and_counters_over_the_wire() -> None:
    async def body(plc: ModbusPlc, model: PlcModel, clock: FakeClock, server: PlcServer) -> None:
        assert plc.identity is not None
        assert (plc.identity.lanes, plc.identity.ring_size, plc.identity.outlets) == (LANES, 256, 5)
        assert await plc.read_outlet_offsets_cups() == (6, 8, 10, 12, 14)
        clock.t_s = 1.234
        model.set_outlet_full(3, True)
        status = await plc.read_status()
        assert status.cup_counter == 12 and status.running
        assert status.belt_speed_cups_per_s == pytest.approx(10.0)
        assert status.outlet_full == (False, False, True, False, False)
        model.set_carton_full(2, True)
        assert (await plc.read_status()).carton_full == (False, True, False, False, False)
        assert await plc.read_position_cups() == pytest.approx(12.34, abs=1e-4)
        assert status.position_cups == pytest.approx(12.34, abs=1e-4)
        assert status.camera_trigger_pitch_cups is None and status.camera_triggers == 0
        model.stop()
        status = await plc.read_status()
        assert not status.running and status.belt_speed_cups_per_s == 0.0

    with_plc(body)


def test_contract_v2_camera_trigger_over_the_wire() -> None:
    async def body(plc: ModbusPlc, model: PlcModel, clock: FakeClock, server: PlcServer) -> None:
        assert plc.identity is not None
        assert plc.identity.contract_version == 2
        # Registers 5-6 carry the pitch as encoder counts per cup and per trigger: exact
        assert plc.identity.camera_trigger_pitch_cups == 2 / 3
        clock.t_s = 1.25  # position 12.5: triggers at 2/3, 4/3, ..., 18 * 2/3 = 12
        status = await plc.read_status()
        assert status.camera_triggers == 18
        assert status.camera_trigger_pitch_cups == 2 / 3
        assert status.position_cups == pytest.approx(12.5, abs=1e-4)
        words = await plc.bus.read("plc", 1, "holding", 0, 7)
        assert words[5:7] == [1002, 668]

    with_plc(body, trigger_pitch=2 / 3)


def test_decisions_fire_expected_cups_across_a_speed_change(tmp_path: Path) -> None:
    log_path = tmp_path / "drops.jsonl"

    async def body(plc: ModbusPlc, model: PlcModel, clock: FakeClock, server: PlcServer) -> None:
        expected: set[tuple[int, int, int]] = set()
        cup = 0
        batches = 0
        # a rolling horizon: every 0.1 s of fake time, decide the cups now 1..3 cups past inspection
        for step in range(1, 120):
            if step == 40:
                model.set_speed(25.0)
            if step == 80:
                model.set_speed(4.0)
            clock.t_s = step * 0.1
            await plc.heartbeat()
            status = await plc.read_status()
            batch = []
            while cup <= status.cup_counter + 2:
                for lane in range(LANES):
                    outlet = (cup * 7 + lane * 3) % 6  # 0 = deliberate recirculation
                    batch.append(OutletDecision(lane, cup, outlet))
                    if outlet:
                        expected.add((lane, cup, outlet))
                cup += 1
            if batch:
                batches += 1
            await plc.write_decisions(batch)
        clock.t_s += 10.0  # run every decided cup past the last outlet
        await plc.read_status()
        assert fired(model) == expected
        counters = await plc.read_counters()
        for n in OUTLETS:
            assert counters.fired_per_outlet[n - 1] == sum(1 for e in expected if e[2] == n)
        # every cup that passed the last outlet (offset 14) either fired or was recirculated; only
        # the cups nobody decided (after the run's last write) count as late
        passed = int(model.position_cups()) - 14 + 1
        assert passed > cup
        assert counters.late_per_lane == (passed - cup,) * LANES
        for lane in range(LANES):
            fired_lane = sum(1 for e in expected if e[0] == lane)
            assert counters.recirculated_per_lane[lane] == passed - fired_lane
        # each batch went as one FC16 request per lane (its slots are consecutive)
        assert plc.writes == LANES * batches

    with_plc(body, drop_log=log_path)
    lines = [json.loads(x) for x in log_path.read_text().splitlines()]
    assert {(d["lane"], d["cup_index"], d["outlet"]) for d in lines if d["outlet"]} and all(
        set(d) == {"lane", "cup_index", "outlet", "t_s"} for d in lines
    )


def test_late_write_does_not_fire() -> None:
    async def body(plc: ModbusPlc, model: PlcModel, clock: FakeClock, server: PlcServer) -> None:
        clock.t_s = 0.75  # position 7.5: cup 1 passed outlet 1 (offset 6)
        await plc.write_decisions(
            [OutletDecision(0, 1, 1), OutletDecision(1, 1, 2), OutletDecision(2, 0, 1)]
        )
        clock.t_s = 5.0
        await plc.read_status()
        assert fired(model) == {(1, 1, 2)}  # outlet 2 (offset 8) was still ahead of cup 1
        counters = await plc.read_counters()
        assert counters.fired_per_outlet == (0, 1, 0, 0, 0)

    with_plc(body)


def test_stalled_watchdog_recirculates_everything() -> None:
    async def body(plc: ModbusPlc, model: PlcModel, clock: FakeClock, server: PlcServer) -> None:
        decisions = [OutletDecision(lane, c, 1) for lane in range(LANES) for c in range(60)]
        await plc.write_decisions(decisions)
        for i in range(1, 11):  # beats every 0.1 s up to t = 1.0 (position 10)
            clock.t_s = i * 0.1
            await plc.heartbeat()
        assert await plc.watchdog_ok()
        clock.t_s = 7.0  # silent since t = 1.0: the watchdog expired at t = 1.5 (position 15)
        await plc.read_status()
        assert not await plc.watchdog_ok()
        fired_cups = sorted({c for (_, c, _) in fired(model)})
        assert fired_cups == list(range(0, 10))  # cup k meets outlet 1 at position k + 6 <= 15
        counters = await plc.read_counters()
        # cups 10..56 passed the last outlet (offset 14) while the watchdog was stalled
        assert counters.watchdog_recirculated_per_lane == (47,) * LANES
        assert counters.fired_per_outlet[0] == 10 * LANES

    with_plc(body, watchdog_s=0.5)


def test_epoch_stops_a_stale_slot_firing_on_the_next_lap() -> None:
    async def body(plc: ModbusPlc, model: PlcModel, clock: FakeClock, server: PlcServer) -> None:
        clock.t_s = 2.0  # position 20: cup 3 long gone
        await plc.write_decisions([OutletDecision(0, 3, 2)])  # late; sits in slot 3 with epoch 0
        clock.t_s = 6.0  # position 60: cup 35 (slot 3, epoch 1) passed every outlet
        await plc.read_status()
        assert fired(model) == set()
        counters = await plc.read_counters()
        assert counters.late_per_lane[0] > 0
        # a decision for the new lap in the same slot does fire
        await plc.write_decisions([OutletDecision(0, 67, 2)])
        clock.t_s = 8.0
        await plc.read_status()
        assert fired(model) == {(0, 67, 2)}

    with_plc(body, ring=32)


def test_contract_violations_are_refused() -> None:
    async def body(plc: ModbusPlc, model: PlcModel, clock: FakeClock, server: PlcServer) -> None:
        with pytest.raises(ModbusExceptionResponse) as exc:
            await plc.write_decisions([OutletDecision(0, 5, 9)])  # no outlet 9
        assert exc.value.exception_code == 3
        with pytest.raises(ModbusExceptionResponse) as exc:
            await plc.bus.write_registers("plc", 1, 10, [0, 0])  # status is read-only
        assert exc.value.exception_code == 2
        wrong = ModbusPlc.from_settings(plc.settings, lanes=LANES + 1)
        with pytest.raises(ModbusConfigError):
            await wrong.open()
        await wrong.close()
        await plc.set_outlet_enabled(2, False)
        await plc.write_decisions([OutletDecision(0, 20, 2)])
        clock.t_s = 5.0
        await plc.read_status()
        assert fired(model) == set() and model.blocked_per_outlet[2] == 1

    with_plc(body)


def test_reads_survive_many_lanes_and_outlets_in_chunks() -> None:
    async def main() -> Any:
        clock = FakeClock()
        outlets = {n: 2 + n for n in range(1, 101)}
        model = PlcModel(16, outlets, 10.0, clock, ring_size=128, watchdog_timeout_s=1e6)
        server = PlcServer(model)
        port = await server.start()
        plc = ModbusPlc.from_settings(
            PlcModbusSettings(kind="modbus", host="127.0.0.1", port=port), lanes=16
        )
        try:
            await plc.open()
            await plc.write_decisions([OutletDecision(15, c, 100) for c in range(128)])
            assert plc.writes == 2  # 128 consecutive slots, at most 120 per FC16
            clock.t_s = 12.0
            counters = await plc.read_counters()
            assert (
                len(counters.fired_per_outlet) == 100 and counters.fired_per_outlet[99] == 19
            )  # cups 0..18 met outlet 100 (offset 102) by position 120
            assert len((await plc.read_status()).outlet_full) == 100
        finally:
            await plc.close()
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
