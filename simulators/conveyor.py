"""In-process stand-ins for the line's devices, over the PLC model's belt: for tests only.

One ``SimulatedConveyor`` holds the fruit (deterministic per seed, lane and cup). The
simulated camera renders the frame of each camera trigger of the in-process ``PlcModel`` and
stamps it with its exposure time, as an encoder-triggered camera would; each lane's simulated
indicator streams what its load cell (``simulators.loadcell``) carries at each sample time.
They implement the ``drivers.interfaces`` Protocols without a wire, a codec or a thread; the
simulated world in its own process (``gradeline sim line``) is what the demo and the
benchmarks run the real drivers against.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from drivers.interfaces import Frame, WeightReading
from simulators.fruit import CupTruth, generate_cup
from simulators.loadcell import LaneLoadCell, displayed_g
from simulators.plc import PlcModel
from simulators.scene import SceneRenderer
from simulators.settings import SimulatedScaleSettings, SimulationSettings


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
    """Renders the frame of each camera trigger of ``plc`` and stamps it with its exposure time.

    Rendering is slow (some 0.1 s a frame): a trigger whose frame could not be rendered in time
    is skipped, as a camera that is still reading out misses a trigger.
    """

    def __init__(
        self,
        conveyor: SimulatedConveyor,
        renderer: SceneRenderer,
        plc: PlcModel,
        clock: Callable[[], float],
        name: str = "camera",
    ) -> None:
        if plc.camera_trigger_pitch_cups is None:
            raise ValueError("the simulated camera is triggered by the PLC: give the PLC model a trigger pitch")
        self.name = name
        self._conveyor = conveyor
        self._renderer = renderer
        self._plc = plc
        self._pitch = plc.camera_trigger_pitch_cups
        self._clock = clock
        self._last_trigger = 0
        self._seq = 0

    async def open(self) -> None:
        self._last_trigger = self._plc.triggers_fired_at(self._plc.position_cups())

    async def read(self) -> Frame:
        while True:
            trigger = max(self._last_trigger + 1, self._plc.triggers_fired_at(self._plc.position_cups()))
            exposure_s = self._plc.time_at_position(trigger * self._pitch)
            if exposure_s is None:  # the belt is stopped: no trigger comes
                await asyncio.sleep(0.05)
                continue
            wait_s = exposure_s - self._clock()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            break
        self._last_trigger = trigger
        # Rendering is CPU work: keep it off the event loop.
        image = await asyncio.to_thread(self._renderer.render, trigger * self._pitch, self._conveyor.cup)
        self._seq += 1
        return Frame(image_bgr=image, t_s=exposure_s, seq=self._seq)

    async def close(self) -> None:
        return None


class SimulatedScale:
    """One lane's indicator, streaming at ``rate_hz`` what its load cell carries at each sample.

    There is no thread: ``take_readings`` produces the samples due since the last call, each at
    its own time and the belt position then, as a streaming indicator would have sent them.
    ``failure_rate`` is the share of samples lost (for fault drills).
    """

    def __init__(
        self,
        conveyor: SimulatedConveyor,
        plc: PlcModel,
        lane: int,
        scale_offset_cups: int,
        settings: SimulatedScaleSettings,
        clock: Callable[[], float],
        seed: int,
        rate_hz: float = 100.0,
        resolution_g: float = 0.1,
        name: str | None = None,
    ) -> None:
        self.name = name or f"lane-{lane + 1}"  # as the real drivers name their scales
        self._plc = plc
        self._cell = LaneLoadCell(
            lambda cup: conveyor.cup(lane, cup).weight_g,
            lane=lane, scale_offset_cups=scale_offset_cups, noise_g=settings.noise_g, seed=seed,
            fault_offset_g=(lambda cup: conveyor.settings.faults.scale_offset_g(lane, cup))
            if conveyor.settings.faults.scale_drift
            else None,
        )
        self._settings = settings
        self._clock = clock
        self._period_s = 1.0 / rate_hz
        self._resolution_g = resolution_g
        self._rng = np.random.default_rng([seed, 7919, lane])
        self._next_s = math.inf
        self._last_good_s = -math.inf

    def plateau_weight_g(self, cup: int) -> float:
        """What this indicator shows for ``cup`` on its load cell (truth for tests)."""
        return displayed_g(self._cell.plateau_weight_g(cup), self._resolution_g)

    async def open(self) -> None:
        self._next_s = self._last_good_s = self._clock()

    def take_readings(self) -> list[WeightReading]:
        now = self._clock()
        readings = []
        while self._next_s <= now:
            t = self._next_s
            self._next_s += self._period_s
            if self._settings.failure_rate and self._rng.random() < self._settings.failure_rate:
                continue
            weight_g, stable = self._cell.load(self._plc.position_at(t))
            readings.append(WeightReading(displayed_g(weight_g, self._resolution_g), stable, t))
            self._last_good_s = t
        return readings

    def is_up(self) -> bool:
        return self._clock() - self._last_good_s < 0.3

    async def close(self) -> None:
        return None
