"""The line PLC simulator: a ``PlcModel`` served over Modbus TCP per the register contract.

Every request first settles the model to the clock's now (so drops happen at the right
cup whatever the polling rate), then reads refresh the requested registers from the model
and writes go into it: ring words into the lane's ring, the watchdog word into the
watchdog, outlet enables into the outlet config. Drops are readable by tests through the
in-process ``model.drop_log`` and, with ``drop_log_path``, as JSON lines
(``{"lane", "cup_index", "outlet", "t_s"}``) flushed by a background task.

The register addresses below are written from ``docs/plc-register-contract.md``, not
imported from the driver, so a test through the wire checks the two against each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from fractions import Fraction
from pathlib import Path
from typing import IO

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.plc import CUP_COUNTER_MODULUS, DropEvent, PlcModel

CONTRACT_VERSION = 2

# Identity (read-only)
REG_VERSION = 0
REG_LANES = 1
REG_RING_SIZE = 2
REG_OUTLETS = 3
REG_WATCHDOG_TIMEOUT_MS = 4
REG_COUNTS_PER_CUP = 5  # encoder counts per cup
REG_COUNTS_PER_TRIGGER = 6  # encoder counts between camera triggers; 0 = no camera trigger
# Status (read-only)
REG_CUP_COUNTER = 10  # UINT32, high word first
REG_SPEED_CENTI_CUPS = 12
REG_STATUS_BITS = 13  # bit 0 running, bit 1 watchdog alive
REG_HEARTBEAT_ECHO = 14
REG_POSITION_FRACTION = 15  # fraction of the current cup, x10000
REG_CAMERA_TRIGGERS = 16  # UINT32, high word first: triggers fired since power-up
# Commands (read/write)
REG_WATCHDOG = 20
# Per outlet n (1-based) at BASE + (n - 1)
REG_OUTLET_FULL = 100  # read-only 0/1
REG_CARTON_FULL = 200  # read-only 0/1: the outlet's carton is full
REG_OUTLET_OFFSET = 300  # read-only, cups from inspection
REG_OUTLET_ENABLED = 600  # read/write 0/1
# UINT32 counters, high word first; per outlet at BASE + 2 (n - 1), per lane at BASE + 2 lane
REG_FIRED = 1000
REG_BLOCKED = 1600
REG_RECIRCULATED = 2200
REG_LATE = 2300
REG_WATCHDOG_RECIRCULATED = 2400
# Ring words: RING_BASE + lane * ring_size + slot
REG_RING_BASE = 4096
MAX_OUTLETS = 255
MAX_LANES = 32
IDENTITY_WORDS = 7  # 0..6
STATUS_WORDS = 8  # 10..17


def _u32(value: int) -> list[int]:
    value %= CUP_COUNTER_MODULUS
    return [value >> 16, value & 0xFFFF]


def encoder_counts(pitch_cups: float | None, min_counts_per_cup: int = 1000) -> tuple[int, int]:
    """(encoder counts per cup, counts per camera trigger) that give exactly ``pitch_cups``.

    A PLC triggers the camera every so many encoder pulses, so the pitch is a ratio of two
    integers; the model's pitch is that ratio (a fraction with a denominator of at most 1000).
    """
    if pitch_cups is None:
        return 10000, 0
    pitch = Fraction(pitch_cups).limit_denominator(1000)
    if abs(float(pitch) - pitch_cups) > 1e-12:
        raise ValueError(f"camera trigger pitch {pitch_cups} cups is not a ratio of encoder counts")
    scale = max(1, -(-min_counts_per_cup // pitch.denominator))
    per_cup, per_trigger = pitch.denominator * scale, pitch.numerator * scale
    if per_trigger > 0xFFFF or per_cup > 0xFFFF:
        scale = 1
        per_cup, per_trigger = pitch.denominator, pitch.numerator
    if not 1 <= per_trigger <= 0xFFFF:
        raise ValueError(f"camera trigger pitch {pitch_cups} cups does not fit registers 5-6")
    return per_cup, per_trigger


class PlcServer:
    """Serves one ``PlcModel`` at one Modbus unit id."""

    def __init__(
        self,
        model: PlcModel,
        *,
        device_id: int = 1,
        drop_log_path: Path | None = None,
        write_log_path: Path | None = None,
    ) -> None:
        if model.lanes > MAX_LANES:
            raise ValueError(f"the register contract allows {MAX_LANES} lanes")
        if REG_RING_BASE + model.lanes * model.ring_size > 65536:
            raise ValueError("lanes x ring_size does not fit the register space")
        self._counts_per_cup, self._counts_per_trigger = encoder_counts(model.camera_trigger_pitch_cups)
        self.model = model
        self.device_id = device_id
        self.drop_log_path = drop_log_path
        self._drop_file: IO[str] | None = None
        # every ring word written, with the cup it is for and when it arrived: a benchmark
        # times each decision from the camera's exposure to this moment
        self.write_log_path = write_log_path
        self._write_file: IO[str] | None = None
        self._server: ModbusTcpServer | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.port = 0
        self.requests = 0
        self._outlet_count = len(model.outlet_full)

    # -- register image ------------------------------------------------------------------

    def _simdata(self) -> list[SimData]:
        n_out = self._outlet_count
        lanes = self.model.lanes

        def ro(address: int, count: int) -> SimData:
            return SimData(
                address, count=count, values=0, datatype=DataType.REGISTERS, readonly=True
            )

        return [
            ro(REG_VERSION, IDENTITY_WORDS),
            ro(REG_CUP_COUNTER, STATUS_WORDS),
            SimData(REG_WATCHDOG, count=1, values=0, datatype=DataType.REGISTERS),
            ro(REG_OUTLET_FULL, n_out),
            ro(REG_CARTON_FULL, n_out),
            ro(REG_OUTLET_OFFSET, n_out),
            SimData(REG_OUTLET_ENABLED, count=n_out, values=0, datatype=DataType.REGISTERS),
            ro(REG_FIRED, 2 * n_out),
            ro(REG_BLOCKED, 2 * n_out),
            ro(REG_RECIRCULATED, 2 * lanes),
            ro(REG_LATE, 2 * lanes),
            ro(REG_WATCHDOG_RECIRCULATED, 2 * lanes),
            SimData(
                REG_RING_BASE,
                count=lanes * self.model.ring_size,
                values=0,
                datatype=DataType.REGISTERS,
            ),
        ]

    def register_image(self, address: int, count: int) -> dict[int, int]:
        """The model's current values for the addresses in ``[address, address + count)``."""
        m = self.model
        out: dict[int, int] = {}
        want = range(address, address + count)

        def put(base: int, words: list[int]) -> None:
            lo, hi = max(base, want.start), min(base + len(words), want.stop)
            for a in range(lo, hi):
                out[a] = words[a - base]

        status = m.status()  # settles every cup up to now
        n_out = self._outlet_count
        put(
            REG_VERSION,
            [
                CONTRACT_VERSION,
                m.lanes,
                m.ring_size,
                n_out,
                min(0xFFFF, round(m.watchdog_timeout_s * 1000)),
                self._counts_per_cup,
                self._counts_per_trigger,
            ],
        )
        # Counter, fraction and trigger count all come from the one status snapshot: read at
        # two instants, a cup boundary between them would put the position a whole cup off.
        assert status.position_cups is not None
        fraction = min(9999, round((status.position_cups - status.cup_counter) * 10000))
        bits = (1 if status.running else 0) | (2 if m.watchdog_ok() else 0)
        put(
            REG_CUP_COUNTER,
            [
                *_u32(status.cup_counter),
                min(0xFFFF, round(status.belt_speed_cups_per_s * 100)),
                bits,
                m.heartbeat_value & 0xFFFF,
                fraction,
                *_u32(status.camera_triggers or 0),
            ],
        )
        put(REG_WATCHDOG, [m.heartbeat_value & 0xFFFF])
        outlets = range(1, n_out + 1)
        if want.start < REG_RING_BASE:
            put(REG_OUTLET_FULL, [1 if m.outlet_full[n - 1] else 0 for n in outlets])
            put(REG_CARTON_FULL, [1 if m.carton_full[n - 1] else 0 for n in outlets])
            put(REG_OUTLET_OFFSET, [m.outlet_offsets_cups.get(n, 0) for n in outlets])
            put(REG_OUTLET_ENABLED, [1 if m.outlet_enabled[n - 1] else 0 for n in outlets])
            put(REG_FIRED, [w for n in outlets for w in _u32(m.fired_per_outlet.get(n, 0))])
            put(REG_BLOCKED, [w for n in outlets for w in _u32(m.blocked_per_outlet.get(n, 0))])
            put(REG_RECIRCULATED, [w for c in m.recirculated_per_lane for w in _u32(c)])
            put(REG_LATE, [w for c in m.late_per_lane for w in _u32(c)])
            put(
                REG_WATCHDOG_RECIRCULATED,
                [w for c in m.watchdog_recirculated_per_lane for w in _u32(c)],
            )
        if want.stop > REG_RING_BASE:
            for lane in range(m.lanes):
                base = REG_RING_BASE + lane * m.ring_size
                if base < want.stop and base + m.ring_size > want.start:
                    put(base, m.ring_lane(lane))
        return out

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        m = self.model
        if function_code not in (3, 4, 6, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        if set_values is None:
            for a, v in self.register_image(address, count).items():
                registers[a - start_address] = v
            self._log_drops(m.advance())
            return None
        values = [int(v) for v in set_values]
        ring_end = REG_RING_BASE + m.lanes * m.ring_size
        if address >= REG_RING_BASE and address + len(values) <= ring_end:
            # An outlet the PLC does not have is refused rather than silently recirculated.
            if any((v & 0xFF) and (v & 0xFF) not in m.outlet_offsets_cups for v in values):
                return ExcCodes.ILLEGAL_VALUE
            now_s = m.now_s()
            for i, word in enumerate(values):
                lane, slot = divmod(address + i - REG_RING_BASE, m.ring_size)
                m.write_slot(lane, slot, word)
                if self._write_file is not None:
                    self._write_file.write(
                        f'{{"lane":{lane},"cup_index":{self._cup_of(slot, word)},"outlet":{word & 0xFF},"t_s":{now_s!r}}}\n'
                    )
        elif address == REG_WATCHDOG and len(values) == 1:
            m.heartbeat(values[0])
        elif (
            address >= REG_OUTLET_ENABLED
            and address + len(values) <= REG_OUTLET_ENABLED + self._outlet_count
        ):
            if any(v not in (0, 1) for v in values):
                return ExcCodes.ILLEGAL_VALUE
            for i, v in enumerate(values):
                m.set_outlet_enabled(address - REG_OUTLET_ENABLED + i + 1, bool(v))
        else:
            return ExcCodes.ILLEGAL_ADDRESS
        self._log_drops(m.advance())
        return None

    def _cup_of(self, slot: int, word: int) -> int:
        """The cup a ring word is for: the one with that slot and epoch nearest the belt."""
        ring = self.model.ring_size
        lap = ring * 256
        base = slot + (word >> 8) * ring
        here = self.model.position_cups()
        return (base + lap * round((here - base) / lap)) % CUP_COUNTER_MODULUS

    # -- drop log ------------------------------------------------------------------------

    def _log_drops(self, events: list[DropEvent]) -> None:
        if self._write_file is not None:
            self._write_file.flush()
        if self._drop_file is None or not events:
            return
        for e in events:
            self._drop_file.write(
                json.dumps(
                    {"lane": e.lane, "cup_index": e.cup_index, "outlet": e.outlet, "t_s": e.t_s}
                )
                + "\n"
            )
        self._drop_file.flush()

    async def _flush_periodically(self, period_s: float) -> None:
        # Drops happen by the clock even when nobody polls; keep the side channel current.
        while True:
            await asyncio.sleep(period_s)
            self._log_drops(self.model.advance())

    # -- lifecycle -----------------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, flush_period_s: float = 0.05
    ) -> int:
        """Listen on ``host:port`` (0 = any free port); returns the bound port."""
        if self.drop_log_path is not None and self._drop_file is None:
            self._drop_file = self.drop_log_path.open("a", encoding="utf-8")
        if self.write_log_path is not None and self._write_file is None:
            self._write_file = self.write_log_path.open("a", encoding="utf-8")
        device = SimDevice(id=self.device_id, simdata=self._simdata(), action=self._action)
        server = ModbusTcpServer(device, address=(host, port), framer=FramerType.SOCKET)
        await server.serve_forever(background=True)
        self._server = server
        listener = server.transport
        sockets = getattr(listener, "sockets", None)
        if not sockets:
            raise RuntimeError("PLC server is not listening")
        self.port = int(sockets[0].getsockname()[1])
        self._flusher = asyncio.create_task(
            self._flush_periodically(flush_period_s), name="plc drop log"
        )
        return self.port

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
        self._log_drops(self.model.advance())
        if self._drop_file is not None:
            self._drop_file.close()
            self._drop_file = None
        if self._write_file is not None:
            self._write_file.close()
            self._write_file = None
