"""The line PLC as a pure, clock-driven model, and an in-memory ``Plc`` over it.

``PlcModel`` owns what the real PLC owns: the encoder (cup position), one cup-indexed ring
buffer of outlet decisions per lane, firing the outlets when a cup reaches them, the
outlet-full inputs, the watchdog and the counters. It never sleeps and never reads the wall
clock: the clock is injected, and every public method first catches the model up to "now"
so that state changes (speed, heartbeat, late ring writes) take effect at the right cup.

``SimulatedPlc`` implements ``drivers.interfaces.Plc`` in memory on top of the model; the
Modbus TCP face of the same model lives in ``simulators/plc_server.py``. The register
contract both follow is ``docs/plc-register-contract.md``.

Conventions: lanes are 0-based (``0 .. lanes-1``); outlets are numbered from 1 as the
line config numbers them; outlet 0 means "recirculate" (the PLC default).

Camera trigger (contract v2): with a trigger pitch, trigger ``m`` (``m >= 1``) fires when the
position reaches ``m * pitch``; the count of triggers fired is ``floor(position / pitch)``.
The model keeps its recent speed segments, so ``time_at_position`` gives the exact moment a
position was (or, at the current speed, will be) reached, which is the exposure time of a
trigger.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from drivers.interfaces import OutletDecision, PlcStatus

CUP_COUNTER_MODULUS = 2**32
EPOCH_MODULUS = 256


@dataclass(frozen=True, slots=True)
class _Segment:
    """The belt from ``t_s`` on: at ``position_cups`` then, moving at ``speed_cups_per_s``."""

    t_s: float
    position_cups: float
    speed_cups_per_s: float  # 0 while stopped


# Float positions computed from a time land within rounding of a trigger position; without
# this slack a trigger "reached" by time_at_position could still count as not yet fired.
_TRIGGER_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class DropEvent:
    """One cup leaving the chain: fired at ``outlet``, or recirculated (``outlet == 0``)."""

    lane: int
    cup_index: int  # on the 32-bit cup counter's scale (wraps at 2**32)
    outlet: int
    t_s: float


def ring_word(cup_index: int, outlet: int, ring_size: int = 256) -> int:
    """The ring-buffer word for ``cup_index``: ``(epoch << 8) | outlet``."""
    if not 0 <= outlet <= 0xFF:
        raise ValueError(f"outlet {outlet} out of range 0..255")
    return (ring_epoch(cup_index, ring_size) << 8) | outlet


def ring_epoch(cup_index: int, ring_size: int = 256) -> int:
    """Which lap of the ring ``cup_index`` belongs to, modulo 256."""
    return (cup_index // ring_size) % EPOCH_MODULUS


class PlcModel:
    """Pure, clock-driven model of the line PLC: encoder, ring buffer, firing, counters, watchdog.

    Cup ``k`` is at the inspection point when ``position_cups() == k`` and reaches outlet ``n``
    when ``position_cups() - k >= offset(n)``. At each outlet the cup fires if its lane's slot
    ``k % ring_size`` holds ``n`` with the cup's epoch, the outlet is enabled and not full, and
    the watchdog is alive. A cup that passes the last outlet unfired is recirculated.
    """

    def __init__(
        self,
        lanes: int,
        outlet_offsets_cups: Mapping[int, int],
        cups_per_second: float,
        clock: Callable[[], float],
        ring_size: int = 256,
        watchdog_timeout_s: float = 2.0,
        max_drop_log: int | None = 200_000,
        camera_trigger_pitch_cups: float | None = None,
    ) -> None:
        if lanes < 1:
            raise ValueError("lanes must be >= 1")
        if not outlet_offsets_cups:
            raise ValueError("at least one outlet is needed")
        if any(not 1 <= n <= 255 for n in outlet_offsets_cups):
            raise ValueError("outlet numbers must be 1..255 (0 means recirculate)")
        if any(o < 1 for o in outlet_offsets_cups.values()):
            raise ValueError("outlet offsets must be >= 1 cup")
        # A power of two divides 2**32, so slots and epochs stay continuous when the 32-bit
        # cup counter wraps.
        if ring_size < 2 or ring_size & (ring_size - 1) or ring_size > 4096:
            raise ValueError("ring_size must be a power of two between 2 and 4096")
        last_offset = max(outlet_offsets_cups.values())
        if last_offset >= ring_size:
            raise ValueError(
                f"ring_size {ring_size} must exceed the last outlet offset {last_offset}"
            )
        if cups_per_second < 0:
            raise ValueError("cups_per_second must be >= 0")
        if watchdog_timeout_s <= 0:
            raise ValueError("watchdog_timeout_s must be > 0")
        if camera_trigger_pitch_cups is not None and not camera_trigger_pitch_cups > 0:
            raise ValueError("camera_trigger_pitch_cups must be > 0 (None = no camera trigger)")

        self.lanes = lanes
        self.camera_trigger_pitch_cups = camera_trigger_pitch_cups
        self.ring_size = ring_size
        self.watchdog_timeout_s = watchdog_timeout_s
        self.outlet_offsets_cups: dict[int, int] = dict(outlet_offsets_cups)
        # Outlets in the order a cup meets them; ties keep outlet-number order.
        self._outlets_in_order = sorted(
            self.outlet_offsets_cups, key=lambda n: (self.outlet_offsets_cups[n], n)
        )
        max_outlet = max(self.outlet_offsets_cups)
        self.outlet_full: list[bool] = [False] * max_outlet
        self.carton_full: list[bool] = [False] * max_outlet  # each outlet's carton-full input
        self.outlet_enabled: list[bool] = [True] * max_outlet

        self._clock = clock
        now = clock()
        self._speed_cups_per_s = float(cups_per_second)
        self.running = True
        self._pos_ref = 0.0
        self._t_ref = now
        # Enough history to time a trigger the camera has not yet served across a few speed
        # changes; older segments are of no use to anyone.
        self._segments: deque[_Segment] = deque(
            [_Segment(now, 0.0, self._speed_cups_per_s)], maxlen=64
        )
        # Position up to which cups have been processed against the outlets.
        self._processed_pos = 0.0
        self._processed_t = now

        # A cleared slot keeps a stale epoch; start every slot one lap "behind" cup 0.
        stale = (EPOCH_MODULUS - 1) << 8
        self._ring: list[list[int]] = [[stale] * ring_size for _ in range(lanes)]
        self._fired: set[tuple[int, int]] = (
            set()
        )  # (lane, cup) fired and not yet past the last outlet

        self._heartbeat_value: int | None = None
        # Grace period after power-up: the PC gets one watchdog timeout to start beating.
        self._heartbeat_changed_t = now

        self._pending: list[DropEvent] = []
        self.drop_log: list[DropEvent] = []
        self.fired_per_outlet: dict[int, int] = dict.fromkeys(self.outlet_offsets_cups, 0)
        self.recirculated_per_lane: list[int] = [0] * lanes
        self.late_per_lane: list[int] = [0] * lanes  # no decision with the cup's epoch at all
        self.watchdog_recirculated_per_lane: list[int] = [0] * lanes
        self.blocked_per_outlet: dict[int, int] = dict.fromkeys(
            self.outlet_offsets_cups, 0
        )  # full or disabled
        self.ring_writes = 0
        # A demo line left running adds ~30 drops/s; keep the newest ones (None = keep all).
        self.max_drop_log = max_drop_log

    # -- encoder -------------------------------------------------------------------------

    def _position_at(self, t: float) -> float:
        if not self.running:
            return self._pos_ref
        return self._pos_ref + max(0.0, t - self._t_ref) * self._speed_cups_per_s

    def now_s(self) -> float:
        """The model's clock now."""
        return self._clock()

    def position_cups(self) -> float:
        """Encoder position in cups; cup ``k`` is at the inspection point at position ``k``."""
        return self._position_at(self._clock())

    @property
    def cup_counter(self) -> int:
        """The 32-bit cup counter the PLC publishes: floor of the position, wrapping."""
        return math.floor(self.position_cups()) % CUP_COUNTER_MODULUS

    @property
    def speed_cups_per_s(self) -> float:
        """Belt speed as the encoder measures it: 0 while stopped."""
        return self._speed_cups_per_s if self.running else 0.0

    @property
    def set_speed_cups_per_s(self) -> float:
        return self._speed_cups_per_s

    def _rebase(self) -> None:
        now = self._clock()
        self._catch_up(now)
        self._pos_ref = self._position_at(now)
        self._t_ref = now

    def _record_segment(self) -> None:
        self._segments.append(_Segment(self._t_ref, self._pos_ref, self.speed_cups_per_s))

    def start(self) -> None:
        self._rebase()
        self.running = True
        self._record_segment()

    def stop(self) -> None:
        self._rebase()
        self.running = False
        self._record_segment()

    def set_speed(self, cups_per_second: float) -> None:
        if cups_per_second < 0:
            raise ValueError("cups_per_second must be >= 0")
        self._rebase()
        self._speed_cups_per_s = float(cups_per_second)
        self._record_segment()

    def position_at(self, t_s: float) -> float:
        """Where the belt was at ``t_s`` (or will be, at the current speed), from the kept
        segments; before the oldest segment kept, that segment's start."""
        position = self._segments[0].position_cups
        for seg in self._segments:
            if seg.t_s > t_s:
                break
            position = seg.position_cups + seg.speed_cups_per_s * (t_s - seg.t_s)
        return position

    def time_at_position(self, position_cups: float) -> float | None:
        """When the belt reached ``position_cups``, or will reach it at the current speed.

        None when it will not (the belt is stopped short of it) or when it was reached before
        the oldest segment kept.
        """
        segments = list(self._segments)
        for i, seg in enumerate(segments):
            if seg.speed_cups_per_s <= 0 or position_cups < seg.position_cups:
                continue
            end = segments[i + 1].position_cups if i + 1 < len(segments) else math.inf
            if position_cups <= end:
                return seg.t_s + (position_cups - seg.position_cups) / seg.speed_cups_per_s
        return None

    # -- camera trigger ------------------------------------------------------------------

    def triggers_fired_at(self, position_cups: float) -> int:
        """Camera triggers fired by the time the belt is at ``position_cups`` (not wrapped)."""
        pitch = self.camera_trigger_pitch_cups
        if pitch is None or position_cups <= 0:
            return 0
        return math.floor(position_cups / pitch + _TRIGGER_EPSILON)

    @property
    def camera_triggers(self) -> int:
        """Triggers fired since power-up, on the contract's 32-bit scale."""
        return self.triggers_fired_at(self.position_cups()) % CUP_COUNTER_MODULUS

    # -- ring buffer ---------------------------------------------------------------------

    def _check_slot(self, lane: int, slot: int) -> None:
        if not 0 <= lane < self.lanes:
            raise IndexError(f"lane {lane} out of range 0..{self.lanes - 1}")
        if not 0 <= slot < self.ring_size:
            raise IndexError(f"slot {slot} out of range 0..{self.ring_size - 1}")

    def write_slot(self, lane: int, slot: int, word: int) -> None:
        """Store a ring word. Cups that already passed (by the clock) are settled first, so a
        write that arrives after its cup's outlet cannot fire it."""
        self._check_slot(lane, slot)
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"ring word {word} is not a 16-bit value")
        self._catch_up(self._clock())
        self._ring[lane][slot] = word
        self.ring_writes += 1

    def read_slot(self, lane: int, slot: int) -> int:
        self._check_slot(lane, slot)
        return self._ring[lane][slot]

    def ring_lane(self, lane: int) -> list[int]:
        """A copy of one lane's ring (for the Modbus face and tests)."""
        self._check_slot(lane, 0)
        return list(self._ring[lane])

    def set_outlet_full(self, outlet: int, full: bool) -> None:
        """Set an outlet-full input at the current time (cups already past are settled first)."""
        self._catch_up(self._clock())
        self.outlet_full[outlet - 1] = full

    def set_carton_full(self, outlet: int, full: bool) -> None:
        """Set an outlet's carton-full input (a carton scale or the packer's button)."""
        self.carton_full[outlet - 1] = full

    def set_outlet_enabled(self, outlet: int, enabled: bool) -> None:
        self._catch_up(self._clock())
        self.outlet_enabled[outlet - 1] = enabled

    # -- watchdog ------------------------------------------------------------------------

    def heartbeat(self, value: int) -> None:
        """The PC's watchdog word. Only a change counts as a beat."""
        now = self._clock()
        self._catch_up(now)
        if value != self._heartbeat_value:
            self._heartbeat_value = value
            self._heartbeat_changed_t = now

    @property
    def heartbeat_value(self) -> int:
        return self._heartbeat_value if self._heartbeat_value is not None else 0

    def watchdog_ok(self) -> bool:
        return self._watchdog_ok_at(self._clock())

    def _watchdog_ok_at(self, t: float) -> bool:
        return t - self._heartbeat_changed_t <= self.watchdog_timeout_s

    # -- firing --------------------------------------------------------------------------

    def advance(self) -> list[DropEvent]:
        """Process every cup that reached an outlet since the last call; return the drops."""
        self._catch_up(self._clock())
        events, self._pending = self._pending, []
        return events

    def _catch_up(self, now: float) -> None:
        """Settle every (cup, outlet) meeting between the processed position and ``now``.

        Speed is constant over the interval because every speed or run-state change calls
        this first; that lets each meeting get its exact time from the position.
        """
        pos = self._position_at(now)
        prev = self._processed_pos
        if pos <= prev:
            self._processed_t = max(self._processed_t, now)
            return
        t_prev = self._processed_t
        speed = self._speed_cups_per_s
        meetings: list[tuple[int, int, int]] = []  # (k + offset, k, outlet)
        for outlet in self._outlets_in_order:
            offset = self.outlet_offsets_cups[outlet]
            # Cup k meets this outlet when position reaches k + offset.
            first = math.floor(prev - offset) + 1
            last = math.floor(pos - offset)
            first = max(first, 0)
            meetings.extend((k + offset, k, outlet) for k in range(first, last + 1))
        meetings.sort()
        for meet_pos, k, outlet in meetings:
            t_meet = t_prev + (meet_pos - prev) / speed if speed > 0 else now
            for lane in range(self.lanes):
                self._meet(lane, k, outlet, t_meet)
        self._processed_pos = pos
        self._processed_t = now

    def _meet(self, lane: int, k: int, outlet: int, t_s: float) -> None:
        slot = k % self.ring_size
        epoch = ring_epoch(k, self.ring_size)
        word = self._ring[lane][slot]
        word_valid = (word >> 8) == epoch
        key = (lane, k)
        fired = key in self._fired
        alive = self._watchdog_ok_at(t_s)
        if not fired and alive and word_valid and (word & 0xFF) == outlet:
            if self.outlet_full[outlet - 1] or not self.outlet_enabled[outlet - 1]:
                self.blocked_per_outlet[outlet] += 1
            else:
                self._fired.add(key)
                fired = True
                self.fired_per_outlet[outlet] += 1
                self._emit(DropEvent(lane, k % CUP_COUNTER_MODULUS, outlet, t_s))
        if outlet != self._outlets_in_order[-1]:
            return
        # Past the last outlet: the cup leaves the chain's sorting section.
        if fired:
            self._fired.discard(key)
        else:
            self.recirculated_per_lane[lane] += 1
            if not alive:
                self.watchdog_recirculated_per_lane[lane] += 1
            elif not word_valid:
                self.late_per_lane[lane] += 1
            self._emit(DropEvent(lane, k % CUP_COUNTER_MODULUS, 0, t_s))
        # Clear the decision but keep its epoch, so the next lap's cup sees a stale slot.
        # A word already rewritten for the next lap (another epoch) is left alone.
        if word_valid:
            self._ring[lane][slot] = epoch << 8

    def _emit(self, event: DropEvent) -> None:
        self._pending.append(event)
        self.drop_log.append(event)
        if self.max_drop_log is not None and len(self.drop_log) > self.max_drop_log:
            # Trim the oldest half at once so appends stay amortised O(1).
            del self.drop_log[: len(self.drop_log) - self.max_drop_log // 2]

    def status(self) -> PlcStatus:
        """The PLC's status after settling every cup up to now."""
        now = self._clock()
        self._catch_up(now)
        position = self._position_at(now)
        counter = math.floor(position) % CUP_COUNTER_MODULUS
        return PlcStatus(
            cup_counter=counter,
            belt_speed_cups_per_s=self.speed_cups_per_s,
            running=self.running,
            outlet_full=tuple(self.outlet_full[n - 1] for n in range(1, len(self.outlet_full) + 1)),
            t_s=now,
            position_cups=counter + (position - math.floor(position)),
            camera_trigger_pitch_cups=self.camera_trigger_pitch_cups,
            camera_triggers=self.triggers_fired_at(position) % CUP_COUNTER_MODULUS,
            carton_full=tuple(self.carton_full),
        )


class SimulatedPlc:
    """``drivers.interfaces.Plc`` in memory, over a ``PlcModel`` (no wire protocol)."""

    def __init__(self, model: PlcModel, name: str = "plc") -> None:
        self.model = model
        self.name = name
        self._heartbeat_counter = 0
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def read_status(self) -> PlcStatus:
        self.model.advance()
        return self.model.status()

    async def write_decisions(self, decisions: Sequence[OutletDecision]) -> None:
        ring = self.model.ring_size
        for d in decisions:
            self.model.write_slot(
                d.lane, d.cup_index % ring, ring_word(d.cup_index, d.outlet, ring)
            )

    async def heartbeat(self) -> None:
        self._heartbeat_counter = (self._heartbeat_counter + 1) & 0xFFFF
        self.model.heartbeat(self._heartbeat_counter)
