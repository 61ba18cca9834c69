"""Byte-stream fault injection for wire-level simulators: disconnect, delay, garbage, bad checksum.

A ``FaultInjector`` sits between a simulator's frame encoder and its transport. Faults are
either one-shot (``corrupt_next``, ``inject_garbage``, ``stall``, ``disconnect``), for tests
that need one precise fault, or rates (``FaultRates``), for soak runs from the command line.
Random choices come from a seeded generator, so the same seed gives the same byte stream.
The injector knows nothing about any protocol: the simulator passes in how to spoil a
checksum for its frame format.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Random faults per emitted frame (all zero = a clean line)."""

    garbage_rate: float = 0.0  # share of frames preceded by a burst of random bytes
    garbage_max_bytes: int = 8  # longest burst
    bad_checksum_rate: float = 0.0  # share of frames sent with a spoiled check
    delay_s: float = 0.0  # extra latency before every frame or reply

    def __post_init__(self) -> None:
        for name in ("garbage_rate", "bad_checksum_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.garbage_max_bytes < 1 or self.delay_s < 0:
            raise ValueError("garbage_max_bytes must be >= 1 and delay_s >= 0")


@dataclass(frozen=True, slots=True)
class FaultCounts:
    frames: int
    garbage_bursts: int
    garbage_bytes: int
    corrupted_frames: int
    disconnects: int


class FaultInjector:
    """Applies faults to outgoing frames and signals disconnects to whoever owns the transport."""

    def __init__(self, rates: FaultRates | None = None, *, seed: int = 0) -> None:
        self.rates = rates or FaultRates()
        self._rng = random.Random(seed)
        self._corrupt_pending = 0
        self._garbage_pending = bytearray()
        self._stall_s = 0.0
        self._disconnect_listeners: list[Callable[[], None]] = []
        self._frames = self._bursts = self._garbage_bytes = self._corrupted = self._disconnects = 0

    # -- one-shot faults -------------------------------------------------------------------
    def corrupt_next(self, frames: int = 1) -> None:
        """Spoil the check of the next ``frames`` frames."""
        self._corrupt_pending += frames

    def inject_garbage(self, data: bytes | int) -> None:
        """Send these bytes (or this many random bytes) before the next frame."""
        if isinstance(data, int):
            data = self.random_garbage(data)
        self._garbage_pending += data

    def stall(self, seconds: float) -> None:
        """Hold the next frame or reply back this long (the line goes quiet)."""
        self._stall_s += seconds

    def disconnect(self) -> None:
        """Drop every open connection now (cable pulled, gateway reset)."""
        self._disconnects += 1
        for listener in list(self._disconnect_listeners):
            listener()

    def on_disconnect(self, listener: Callable[[], None]) -> None:
        self._disconnect_listeners.append(listener)

    # -- used by the simulator ------------------------------------------------------------
    def random_garbage(self, n_bytes: int) -> bytes:
        return bytes(self._rng.randrange(256) for _ in range(n_bytes))

    def take_delay_s(self) -> float:
        """Latency to apply before the next frame: the rate setting plus any one-shot stall."""
        delay, self._stall_s = self.rates.delay_s + self._stall_s, 0.0
        return delay

    def apply(self, frame: bytes, spoil_check: Callable[[bytes], bytes]) -> bytes:
        """The bytes to put on the wire for one frame."""
        self._frames += 1
        out = bytearray(self._garbage_pending)
        self._garbage_pending.clear()
        if self.rates.garbage_rate and self._rng.random() < self.rates.garbage_rate:
            out += self.random_garbage(self._rng.randint(1, self.rates.garbage_max_bytes))
        if out:
            self._bursts += 1
            self._garbage_bytes += len(out)
        corrupt = self._corrupt_pending > 0
        if corrupt:
            self._corrupt_pending -= 1
        elif self.rates.bad_checksum_rate:
            corrupt = self._rng.random() < self.rates.bad_checksum_rate
        if corrupt:
            self._corrupted += 1
            frame = spoil_check(frame)
        return bytes(out + frame)

    @property
    def counts(self) -> FaultCounts:
        return FaultCounts(
            self._frames, self._bursts, self._garbage_bytes, self._corrupted, self._disconnects
        )
