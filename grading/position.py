"""Belt position as a function of time, from the PLC's status replies, and frames placed on it.

The PLC owns the encoder; the PC only sees its replies, each stamped when it arrived. A reply
can be held up on its way (a busy PC, a slow network), which only ever makes its stamp late.
So of the recent replies at one belt speed, the one with the largest ``position - speed * t``
is the least late, and it is the reference: the position at any time ``t`` is
``ref_position + speed * (t - ref_t)``. One prompt reply in the window is enough for an exact
estimate, however many were late.

Frames are placed on the trigger grid of ``docs/plc-register-contract.md`` ("Camera trigger"):
the estimate at the frame's exposure time is snapped to the nearest ``m * pitch``. The 32-bit
cup counter's wrap is undone here, so positions only grow; cup indices are taken modulo 2**32
where they meet the PLC again.

Owns no I/O and no clock: times are passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from drivers.interfaces import PlcStatus

CUP_COUNTER_MODULUS = 2**32
_SPEED_CHANGE_CUPS_PER_S = 0.02  # the register's resolution is 0.01 cups/s


@dataclass(frozen=True, slots=True)
class FramePlacement:
    position_cups: float  # belt position at exposure (unwrapped)
    trigger: int | None  # trigger number on the PLC's grid; None for a free-running camera


class BeltTiming:
    """Belt position at any recent moment, from stamped PLC status samples.

    ``window_s`` bounds how far back samples count: long enough to hold a prompt reply even
    when most are late, short enough that the speed read with them still holds. With no reply
    for ``stale_after_s`` the position is unknown: the belt may have stopped or changed speed.
    """

    def __init__(self, window_s: float = 1.0, stale_after_s: float = 0.5) -> None:
        self._window_s = window_s
        self._stale_after_s = stale_after_s
        self._samples: deque[tuple[float, float]] = deque()  # (t_s, unwrapped position)
        self._speed_cups_per_s = 0.0
        self._last_raw: float | None = None
        self._unwrapped = 0.0
        self.trigger_pitch_cups: float | None = None
        self._last_trigger: int | None = None
        self.frames_unplaced = 0  # two frames on one trigger, or no timing yet
        self.frames_missing = 0  # trigger numbers skipped between consecutive frames

    @property
    def known(self) -> bool:
        return bool(self._samples)

    @property
    def speed_cups_per_s(self) -> float:
        return self._speed_cups_per_s

    def observe(self, status: PlcStatus) -> None:
        raw = status.position_cups if status.position_cups is not None else status.cup_counter + 0.5
        if self._last_raw is None:
            self._unwrapped = raw
        else:
            step = (raw - self._last_raw) % CUP_COUNTER_MODULUS
            if step > CUP_COUNTER_MODULUS / 2:  # a reply older than the previous one: no step back
                step -= CUP_COUNTER_MODULUS
            self._unwrapped += step
        self._last_raw = raw
        speed = status.belt_speed_cups_per_s
        if abs(speed - self._speed_cups_per_s) > _SPEED_CHANGE_CUPS_PER_S:
            self._samples.clear()  # the reference must be at the speed it is extrapolated with
        self._speed_cups_per_s = speed
        self._samples.append((status.t_s, self._unwrapped))
        while self._samples and self._samples[0][0] < status.t_s - self._window_s:
            self._samples.popleft()
        if status.camera_trigger_pitch_cups:
            self.trigger_pitch_cups = status.camera_trigger_pitch_cups

    def forget_frames(self) -> None:
        """Frames stop being placed for a while (intake stopped): the next one starts afresh."""
        self._last_trigger = None

    def position_at(self, t_s: float) -> float | None:
        """Unwrapped belt position at ``t_s``; None before the first sample, or when the newest
        is older than ``stale_after_s`` at ``t_s``."""
        if not self._samples or t_s - self._samples[-1][0] > self._stale_after_s:
            return None
        v = self._speed_cups_per_s
        ref_t, ref_p = max(self._samples, key=lambda s: s[1] - v * s[0])
        if v <= 0:
            return self._samples[-1][1]  # stopped: the latest reply is as good as any
        return ref_p + v * (t_s - ref_t)

    def place_frame(self, exposure_t_s: float) -> FramePlacement | None:
        """The belt position of a frame exposed at ``exposure_t_s``, on the trigger grid when
        the PLC triggers the camera. None (and counted) when it cannot be placed."""
        estimate = self.position_at(exposure_t_s)
        if estimate is None:
            self.frames_unplaced += 1
            return None
        pitch = self.trigger_pitch_cups
        if not pitch:
            return FramePlacement(estimate, None)
        trigger = round(estimate / pitch)
        last = self._last_trigger
        if last is not None:
            if trigger <= last:
                # Two frames on one trigger: one stamp is off by half a trigger period or more.
                # Neither can be trusted to be where it seems; this one is not used.
                self.frames_unplaced += 1
                return None
            self.frames_missing += trigger - last - 1
        self._last_trigger = trigger
        return FramePlacement(trigger * pitch, trigger)


def counter_cup(cup_index: int) -> int:
    """A cup index (unwrapped) on the PLC's 32-bit counter scale."""
    return cup_index % CUP_COUNTER_MODULUS
