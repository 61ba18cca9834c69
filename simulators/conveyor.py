"""In-memory simulated conveyor: the fruit in every cup, and the camera and load cells that see them.

One ``SimulatedConveyor`` holds the fruit (deterministic per seed, lane and cup) and reads the
belt position from a callable (the simulated PLC's encoder, or a free-running belt). The
simulated camera renders what is under it at each frame time; each lane's simulated load cell
weighs the cup that is on it when asked. Both implement the ``drivers.interfaces`` Protocols, so
the line runtime cannot tell them from real devices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from drivers.interfaces import DeviceTimeout, EndOfStream, Frame, WeightReading
from simulators.fruit import CupTruth, generate_cup
from simulators.scene import SceneRenderer
from simulators.settings import SimulatedScaleSettings, SimulationSettings


class FreeRunningBelt:
    """A belt position that advances at a fixed speed, for when the PLC is not simulated here."""

    def __init__(self, cups_per_second: float, clock: Callable[[], float]) -> None:
        self._cups_per_second = cups_per_second
        self._clock = clock
        self._t0_s = clock()

    def __call__(self) -> float:
        return (self._clock() - self._t0_s) * self._cups_per_second


class SimulatedConveyor:
    def __init__(self, product: str, settings: SimulationSettings, position_cups: Callable[[], float]) -> None:
        self.product = product
        self.settings = settings
        self.position_cups = position_cups
        self._cup = lru_cache(maxsize=16384)(self._generate)

    def _generate(self, lane: int, cup_index: int) -> CupTruth:
        return generate_cup(self.product, self.settings, lane, cup_index)

    def cup(self, lane: int, cup_index: int) -> CupTruth:
        """Ground truth of one cup. Tests score against this; the line never sees it."""
        return self._cup(lane, cup_index)


class SimulatedCamera:
    """Renders frames at ``fps`` in real time, stamped with the encoder position at exposure."""

    def __init__(
        self,
        conveyor: SimulatedConveyor,
        renderer: SceneRenderer,
        fps: float,
        clock: Callable[[], float],
        name: str = "camera",
    ) -> None:
        self.name = name
        self._conveyor = conveyor
        self._renderer = renderer
        self._period_s = 1.0 / fps
        self._clock = clock
        self._next_s = 0.0
        self._seq = 0

    async def open(self) -> None:
        self._next_s = self._clock()

    async def read(self) -> Frame:
        now = self._clock()
        if now < self._next_s:
            await asyncio.sleep(self._next_s - now)
        else:  # fell behind: skip missed exposures rather than burst
            self._next_s = now
        self._next_s += self._period_s
        t_s = self._clock()
        position = self._conveyor.position_cups()
        # Rendering is CPU work: keep it off the event loop.
        image = await asyncio.to_thread(self._renderer.render, position, self._conveyor.cup)
        self._seq += 1
        return Frame(image_bgr=image, t_s=t_s, seq=self._seq, belt_position_cups=position)

    async def close(self) -> None:
        return None


class SimulatedScale:
    """The load cell under one lane: weighs whichever cup is centred on it now, with noise."""

    def __init__(
        self,
        conveyor: SimulatedConveyor,
        lane: int,
        scale_offset_cups: int,
        settings: SimulatedScaleSettings,
        clock: Callable[[], float],
        seed: int,
        name: str | None = None,
    ) -> None:
        self.name = name or f"lane-{lane + 1}"  # as the real drivers name their scales
        self._conveyor = conveyor
        self._lane = lane
        self._offset_cups = scale_offset_cups
        self._settings = settings
        self._clock = clock
        self._rng = np.random.default_rng([seed, 7919, lane])

    async def open(self) -> None:
        return None

    async def read_weight(self) -> WeightReading:
        if self._settings.failure_rate and self._rng.random() < self._settings.failure_rate:
            raise DeviceTimeout(self.name, "no answer (simulated fault)")
        cup_index = round(self._conveyor.position_cups() - self._offset_cups)
        truth = self._conveyor.cup(self._lane, cup_index)
        weight_g = truth.weight_g + float(self._rng.normal(0.0, self._settings.noise_g))
        return WeightReading(weight_g=round(weight_g, 1), stable=True, t_s=self._clock())

    async def close(self) -> None:
        return None


class PrerenderedCamera:
    """Replays frames rendered ahead of time, paced in real time, then ends the stream.

    For benchmarks: the line pays for measuring frames, not for drawing them. Frame ``i`` is
    delivered at ``open() + i / fps`` with the belt position it was rendered at.
    """

    def __init__(
        self,
        frames: list[tuple[float, np.ndarray]],
        fps: float,
        clock: Callable[[], float],
        name: str = "camera",
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._on_open = on_open  # e.g. start the simulated belt with the first frame
        self._frames = frames
        self._period_s = 1.0 / fps
        self._clock = clock
        self._t0_s = 0.0
        self._next = 0

    async def open(self) -> None:
        self._t0_s = self._clock()
        if self._on_open is not None:
            self._on_open()

    async def read(self) -> Frame:
        if self._next >= len(self._frames):
            raise EndOfStream(self.name, "all prerendered frames delivered")
        due_s = self._t0_s + self._next * self._period_s
        now = self._clock()
        if now < due_s:
            await asyncio.sleep(due_s - now)
        position, image = self._frames[self._next]
        self._next += 1
        return Frame(image_bgr=image, t_s=max(due_s, now), seq=self._next, belt_position_cups=position)

    async def close(self) -> None:
        return None
