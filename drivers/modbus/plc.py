"""``ModbusPlc``: the line PLC over Modbus TCP, per docs/plc-register-contract.md.

The PC never times a solenoid. It writes the outlet for each cup into the PLC's cup-indexed
ring (one per lane) ahead of the cup's arrival, reads the 32-bit cup counter, belt speed and
outlet-full inputs, and bumps the watchdog word. Decisions are written with FC16 in batches:
consecutive slots of one lane go in one request.

The addresses here are the contract's; the simulator keeps its own copy, written from the
same document, so an end-to-end test checks one against the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from drivers.interfaces import OutletDecision, PlcStatus
from drivers.modbus.client import MAX_READ_REGISTERS, ModbusBus
from drivers.modbus.errors import ModbusConfigError, ModbusCorruptResponse, ModbusExceptionResponse
from drivers.modbus.settings import ModbusTcpTransport, PlcModbusSettings

CONTRACT_VERSION = 2

REG_IDENTITY = 0  # version, lanes, ring_size, outlets, watchdog timeout ms, counts per cup, counts per trigger
IDENTITY_WORDS = 7
# cup counter (UINT32 hi, lo), speed x100, status bits, heartbeat echo, fraction x10000,
# camera triggers (UINT32 hi, lo)
REG_STATUS = 10
STATUS_WORDS = 8
REG_WATCHDOG = 20
REG_OUTLET_FULL = 100
REG_CARTON_FULL = 200  # optional in contract v2: a PLC without it answers exception 2
REG_OUTLET_OFFSET = 300
REG_OUTLET_ENABLED = 600
REG_FIRED = 1000
REG_BLOCKED = 1600
REG_RECIRCULATED = 2200
REG_LATE = 2300
REG_WATCHDOG_RECIRCULATED = 2400
REG_RING_BASE = 4096

STATUS_RUNNING = 0x0001
STATUS_WATCHDOG_OK = 0x0002
CUP_COUNTER_MODULUS = 2**32


@dataclass(frozen=True, slots=True)
class PlcIdentity:
    contract_version: int
    lanes: int
    ring_size: int
    outlets: int
    watchdog_timeout_s: float
    camera_trigger_pitch_cups: float | None = None  # None: the PLC does not trigger the camera


@dataclass(frozen=True, slots=True)
class PlcCounters:
    """The PLC's own tallies, for reconciling with what the PC expected."""

    fired_per_outlet: tuple[int, ...]  # index n-1 is outlet n
    blocked_per_outlet: tuple[int, ...]
    recirculated_per_lane: tuple[int, ...]
    late_per_lane: tuple[int, ...]
    watchdog_recirculated_per_lane: tuple[int, ...]


def ring_slot_and_word(cup_index: int, outlet: int, ring_size: int) -> tuple[int, int]:
    """Slot and word for a decision: slot = cup % ring, word = (epoch << 8) | outlet."""
    if not 0 <= outlet <= 0xFF:
        raise ValueError(f"outlet {outlet} out of range 0..255")
    cup = cup_index % CUP_COUNTER_MODULUS
    epoch = (cup // ring_size) & 0xFF
    return cup % ring_size, (epoch << 8) | outlet


def _u32s(words: Sequence[int]) -> tuple[int, ...]:
    return tuple((words[i] << 16) | words[i + 1] for i in range(0, len(words), 2))


class ModbusPlc:
    """Implements ``drivers.interfaces.Plc`` over the gradeline PLC register contract."""

    def __init__(
        self,
        settings: PlcModbusSettings,
        bus: ModbusBus,
        *,
        name: str = "plc",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.name = name
        self._clock = clock
        self._heartbeat = 0
        self.identity: PlcIdentity | None = None
        self.writes = 0  # FC16 requests sent for decisions
        self.expected_lanes: int | None = None
        self._carton_full_block = True  # until the PLC says it has none

    @classmethod
    def create(
        cls,
        settings: PlcModbusSettings,
        *,
        name: str = "plc",
        clock: Callable[[], float] = time.monotonic,
    ) -> ModbusPlc:
        bus = ModbusBus(
            ModbusTcpTransport(kind="tcp", host=settings.host, port=settings.port),
            timeout_s=settings.timeout_s,
            retries=settings.retries,
            clock=clock,
        )
        return cls(settings, bus, name=name, clock=clock)

    @classmethod
    def from_settings(
        cls,
        settings: PlcModbusSettings,
        *,
        lanes: int | None = None,
        name: str = "plc",
        clock: Callable[[], float] = time.monotonic,
    ) -> ModbusPlc:
        """Build without I/O; ``lanes`` (from the line config) is checked against the PLC at open."""
        plc = cls.create(settings, name=name, clock=clock)
        plc.expected_lanes = lanes
        return plc

    async def open(self) -> None:
        """Connect and read the identity block; refuses a PLC speaking another contract."""
        await self.bus.connect(self.name, self.settings.device_id)
        words = await self._read(REG_IDENTITY, IDENTITY_WORDS)
        if words[5] == 0:
            raise ModbusCorruptResponse(
                self.name, self.settings.device_id, "holding", REG_IDENTITY + 5, "0 encoder counts per cup"
            )
        # the pitch is a ratio of encoder counts: exact, however many triggers from power-up
        identity = PlcIdentity(
            words[0], words[1], words[2], words[3], words[4] / 1000.0, words[6] / words[5] or None
        )
        if identity.contract_version != CONTRACT_VERSION:
            raise ModbusConfigError(
                f"{self.name}: PLC speaks register contract v{identity.contract_version}, driver v{CONTRACT_VERSION}"
            )
        if identity.ring_size < 2 or identity.ring_size & (identity.ring_size - 1):
            raise ModbusCorruptResponse(
                self.name,
                self.settings.device_id,
                "holding",
                REG_IDENTITY + 2,
                f"ring size {identity.ring_size} is not a power of two",
            )
        if self.expected_lanes is not None and identity.lanes != self.expected_lanes:
            raise ModbusConfigError(
                f"{self.name}: PLC has {identity.lanes} lanes, the line config says {self.expected_lanes}"
            )
        self.identity = identity

    def _require_identity(self) -> PlcIdentity:
        if self.identity is None:
            raise ModbusConfigError(f"{self.name}: open() first")
        return self.identity

    async def _read(self, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers, in as many requests as the protocol needs."""
        words: list[int] = []
        while len(words) < count:
            n = min(
                MAX_READ_REGISTERS - MAX_READ_REGISTERS % 2, count - len(words)
            )  # keep UINT32 pairs whole
            words += await self.bus.read(
                self.name, self.settings.device_id, "holding", address + len(words), n
            )
        return words

    async def read_status(self) -> PlcStatus:
        ident = self._require_identity()
        status = await self._read(REG_STATUS, STATUS_WORDS)
        t_s = self._clock()  # when the status arrived; the outlet-full read below is not timed
        full = await self._read(REG_OUTLET_FULL, ident.outlets) if ident.outlets else []
        carton: list[int] = []
        if ident.outlets and self._carton_full_block:
            try:
                carton = await self._read(REG_CARTON_FULL, ident.outlets)
            except ModbusExceptionResponse as exc:
                if exc.exception_code != 2:
                    raise
                self._carton_full_block = False  # a PLC without the optional carton-full block
        counter = (status[0] << 16) | status[1]
        return PlcStatus(
            cup_counter=counter,
            belt_speed_cups_per_s=status[2] / 100.0,
            running=bool(status[3] & STATUS_RUNNING),
            outlet_full=tuple(bool(w) for w in full),
            t_s=t_s,
            position_cups=counter + status[5] / 10000.0,
            camera_trigger_pitch_cups=ident.camera_trigger_pitch_cups,
            camera_triggers=(status[6] << 16) | status[7],
            carton_full=tuple(bool(w) for w in carton),
        )

    async def read_position_cups(self) -> float:
        """Cup counter plus the fraction of the current cup (for stamping free-running frames)."""
        status = await self._read(REG_STATUS, 6)
        return ((status[0] << 16) | status[1]) + status[5] / 10000.0

    async def watchdog_ok(self) -> bool:
        return bool((await self._read(REG_STATUS + 3, 1))[0] & STATUS_WATCHDOG_OK)

    def plan_writes(self, decisions: Sequence[OutletDecision]) -> list[tuple[int, list[int]]]:
        """Group decisions into FC16 requests: (start address, words), consecutive slots of one
        lane per request, at most ``max_registers_per_write`` words. A later decision for the
        same slot wins."""
        ident = self._require_identity()
        per_lane: dict[int, dict[int, int]] = {}
        for d in decisions:
            if not 0 <= d.lane < ident.lanes:
                raise ValueError(f"lane {d.lane} out of range 0..{ident.lanes - 1}")
            slot, word = ring_slot_and_word(d.cup_index, d.outlet, ident.ring_size)
            per_lane.setdefault(d.lane, {})[slot] = word
        requests: list[tuple[int, list[int]]] = []
        limit = self.settings.max_registers_per_write
        for lane in sorted(per_lane):
            slots = per_lane[lane]
            base = REG_RING_BASE + lane * ident.ring_size
            run: list[int] = []
            run_start = -1
            for slot in sorted(slots):
                if run and slot == run_start + len(run) and len(run) < limit:
                    run.append(slots[slot])
                    continue
                if run:
                    requests.append((base + run_start, run))
                run, run_start = [slots[slot]], slot
            if run:
                requests.append((base + run_start, run))
        return requests

    async def write_decisions(self, decisions: Sequence[OutletDecision]) -> None:
        for address, words in self.plan_writes(decisions):
            await self.bus.write_registers(self.name, self.settings.device_id, address, words)
            self.writes += 1

    async def heartbeat(self) -> None:
        # Never 0 after the first beat so a PLC that powers up with 0 sees a change.
        self._heartbeat = self._heartbeat % 0xFFFF + 1
        await self.bus.write_register(
            self.name, self.settings.device_id, REG_WATCHDOG, self._heartbeat
        )

    async def read_counters(self) -> PlcCounters:
        ident = self._require_identity()
        n, lanes = ident.outlets, ident.lanes
        return PlcCounters(
            fired_per_outlet=_u32s(await self._read(REG_FIRED, 2 * n)),
            blocked_per_outlet=_u32s(await self._read(REG_BLOCKED, 2 * n)),
            recirculated_per_lane=_u32s(await self._read(REG_RECIRCULATED, 2 * lanes)),
            late_per_lane=_u32s(await self._read(REG_LATE, 2 * lanes)),
            watchdog_recirculated_per_lane=_u32s(
                await self._read(REG_WATCHDOG_RECIRCULATED, 2 * lanes)
            ),
        )

    async def read_outlet_offsets_cups(self) -> tuple[int, ...]:
        """Offsets the PLC fires at (index n-1 is outlet n; 0 = no such outlet), to check
        against the line config at start."""
        ident = self._require_identity()
        return tuple(await self._read(REG_OUTLET_OFFSET, ident.outlets))

    async def set_outlet_enabled(self, outlet: int, enabled: bool) -> None:
        await self.bus.write_register(
            self.name, self.settings.device_id, REG_OUTLET_ENABLED + outlet - 1, 1 if enabled else 0
        )

    async def close(self) -> None:
        self.bus.close()
