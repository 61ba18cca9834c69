"""ModbusPlc's FC16 batching and ring words, without I/O."""

from __future__ import annotations

import pytest

from drivers.interfaces import OutletDecision
from drivers.modbus.client import ModbusBus
from drivers.modbus.plc import REG_RING_BASE, ModbusPlc, PlcIdentity, ring_slot_and_word
from drivers.modbus.settings import ModbusTcpTransport, PlcModbusSettings
from simulators.plc import ring_word


def make(ring: int = 256, lanes: int = 4, max_regs: int = 120) -> ModbusPlc:
    settings = PlcModbusSettings(kind="modbus", host="127.0.0.1", max_registers_per_write=max_regs)
    plc = ModbusPlc(settings, ModbusBus(ModbusTcpTransport(kind="tcp", host="127.0.0.1")))
    plc.identity = PlcIdentity(1, lanes, ring, 5, 2.0)
    return plc


def test_ring_word_matches_the_model_definition() -> None:
    for cup in (0, 1, 255, 256, 257, 65535, 2**32 - 1):
        slot, word = ring_slot_and_word(cup, 3, 256)
        assert slot == cup % 256
        assert word == ring_word(cup, 3, 256)
    assert ring_slot_and_word(256 * 5 + 7, 2, 256) == (7, (5 << 8) | 2)
    with pytest.raises(ValueError):
        ring_slot_and_word(0, 256, 256)


def test_consecutive_slots_of_a_lane_go_in_one_request() -> None:
    plc = make()
    decisions = [OutletDecision(1, c, 2) for c in range(10, 15)] + [
        OutletDecision(0, 11, 1),
        OutletDecision(0, 12, 4),
    ]
    plan = plc.plan_writes(decisions)
    assert plan == [
        (REG_RING_BASE + 11, [1, 4]),
        (REG_RING_BASE + 256 + 10, [2] * 5),
    ]


def test_gaps_ring_wrap_and_size_limit_split_requests() -> None:
    plc = make(ring=16, max_regs=3)
    decisions = [OutletDecision(0, c, 1) for c in (14, 15, 16, 17, 20, 21, 22, 23, 24)]
    plan = plc.plan_writes(decisions)
    # cups 16, 17 are slots 0, 1 of the next lap (epoch 1); 20..24 are slots 4..8
    assert plan == [
        (REG_RING_BASE + 0, [(1 << 8) | 1, (1 << 8) | 1]),
        (REG_RING_BASE + 4, [(1 << 8) | 1] * 3),
        (REG_RING_BASE + 7, [(1 << 8) | 1] * 2),
        (REG_RING_BASE + 14, [1, 1]),
    ]


def test_later_decision_for_a_slot_wins_and_bad_lanes_are_refused() -> None:
    plc = make()
    assert plc.plan_writes([OutletDecision(0, 5, 1), OutletDecision(0, 5, 3)]) == [
        (REG_RING_BASE + 5, [3])
    ]
    with pytest.raises(ValueError):
        plc.plan_writes([OutletDecision(4, 5, 1)])
