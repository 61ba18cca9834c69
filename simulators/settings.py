"""Config models for the simulated devices and the simulated conveyor's fruit.

Simulator scenarios are config like everything else; the composition root hands these to
``simulators/`` and nothing in the domain reads them.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulatedCameraSettings(_Strict):
    kind: Literal["simulated"] = Field("simulated", description="Render synthetic fruit on a belt.")
    blur_px: float = Field(0.0, ge=0, le=10, description="Gaussian blur sigma in pixels.")
    noise_sigma: float = Field(2.0, ge=0, le=50, description="Per-pixel Gaussian noise, 8-bit levels.")
    lighting_drift: float = Field(0.0, ge=0, le=0.5, description="Relative brightness drift amplitude.")


class SimulatedScaleSettings(_Strict):
    kind: Literal["simulated"] = Field("simulated", description="In-memory load cell per lane.")
    noise_g: float = Field(0.4, ge=0, le=50, description="Weighing noise sigma in grams.")
    failure_rate: float = Field(0.0, ge=0, le=1, description="Share of reads that fail (for fault drills).")


class SimulatedPlcSettings(_Strict):
    kind: Literal["simulated"] = Field("simulated", description="In-memory PLC with encoder and outlets.")


class WorldSettings(_Strict):
    """Knobs of the simulated world process (``gradeline sim line``) that the line never sees.

    The world serves the line's real protocols (PLC and cold rooms over Modbus TCP, one
    weighing indicator per lane over TCP, the camera as MJPEG over HTTP); the geometry, speed,
    outlets and fruit come from the rest of the line config.
    """

    cycle_cups: int = Field(
        120,
        ge=16,
        le=4096,
        description="Fruit repeat every N cups (cup k carries cup k mod N's fruit) so the camera's "
        "frames can be rendered once; the world uses the smallest N >= this that makes the frames "
        "repeat exactly (a multiple of the numerator of cups_per_second / fps in lowest terms).",
    )
    max_frames_per_cycle: int = Field(
        2048,
        ge=16,
        le=16384,
        description="Refuse a speed and frame rate whose exact cycle needs more prerendered frames.",
    )
    jpeg_quality: int = Field(92, ge=50, le=100, description="JPEG quality of the camera frames.")
    camera_latency_s: float = Field(
        0.005,
        ge=0,
        le=0.5,
        description="Time from a trigger's exposure until the frame is sent (readout, transfer).",
    )
    camera_client_backlog_frames: int = Field(
        2,
        ge=1,
        le=64,
        description="Frames a camera client may have waiting (beyond the socket buffers) before "
        "further frames are dropped for it and the drop is logged.",
    )
    cache_dir: str = Field(
        "~/.cache/gradeline/sim-cycles",
        min_length=1,
        description="Where prerendered frame cycles are cached (~ is the home directory; a relative path is "
        "from the working directory), one subdirectory per hash of everything that changes the pixels.",
    )
    render_workers: int = Field(
        0, ge=0, le=64, description="Processes rendering a cycle (0 = one per CPU)."
    )
    scale_resolution_g: float = Field(
        0.1,
        ge=0.001,
        le=1,
        description="Indicator resolution (display step), a power of ten in grams: 0.001 ... 1 "
        "(Toledo frames in kg carry at most 0.01 g, XK3190 at most 0.1 g).",
    )
    scale_stream_hz: float = Field(
        100.0,
        ge=1,
        le=1000,
        description="Frames per second of a streaming indicator protocol (Toledo, XK3190, MT-SICS SIR).",
    )
    scale_noise_g: float = Field(
        0.4,
        ge=0,
        le=50,
        description="Per-cup weighing error sigma when the config's scale is a real protocol; "
        "with scale kind 'simulated' its noise_g applies instead.",
    )
    scale_plateau_half_width_cups: float = Field(
        0.3,
        ge=0.05,
        le=0.45,
        description="A cup within this distance of the load cell's centre rests on it alone "
        "(stable weight); outside, the load blends two neighbouring cups (dynamic).",
    )
    plc_ring_size: int = Field(
        256, ge=16, le=4096, description="PLC ring slots per lane (a power of two)."
    )
    plc_watchdog_timeout_s: float = Field(
        2.0, gt=0, le=60, description="PLC watchdog timeout (register 4)."
    )
    coldrooms: int = Field(
        4,
        ge=0,
        le=247,
        description="Cold rooms served (unit ids 1..N) when the config lists no [[sensors]].",
    )
    coldroom_layout: Literal["xy-md02", "srth100"] = Field(
        "xy-md02", description="Register layout of the rooms' sensors when the config lists none."
    )
    flush_interval_s: float = Field(
        0.05,
        gt=0,
        le=0.1,
        description="Longest time a truth-log line waits before it is flushed to its file.",
    )

    @field_validator("scale_resolution_g")
    @classmethod
    def _power_of_ten(cls, value: float) -> float:
        exponent = round(math.log10(value))
        if not math.isclose(value, 10.0**exponent, rel_tol=1e-9):
            raise ValueError("must be a power of ten (0.001, 0.01, 0.1 or 1 g)")
        return 10.0**exponent

    @field_validator("plc_ring_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("must be a power of two")
        return value


class CameraLaneFault(_Strict):
    """One lane's view darkens from a belt position on: a dirty lens, a failing lamp over it."""

    lane: int = Field(ge=0, le=63, description="Lane whose view darkens (0 = the first lane).")
    from_cup: int = Field(
        0,
        ge=0,
        description="The fault is on in every frame taken once this cup has reached the inspection "
        "point (belt position >= from_cup); earlier frames are clean.",
    )
    gain: float = Field(0.6, ge=0.05, le=1.0, description="Brightness factor over the lane's band while on.")


class ScaleDriftFault(_Strict):
    """One lane's load cell creeps from a cup on: a failing cell or a fouled cup carrier."""

    lane: int = Field(ge=0, le=63, description="Lane whose scale drifts (0 = the first lane).")
    from_cup: int = Field(0, ge=0, description="First cup weighed with the drift.")
    drift_g_per_100_cups: float = Field(
        2.0,
        ge=-100,
        le=100,
        description="Grams the reading gains per 100 cups after from_cup (negative = reads low).",
    )
    max_offset_g: float = Field(
        50.0, gt=0, le=1000, description="Largest offset the drift reaches (it stays there)."
    )

    def offset_g(self, cup: int) -> float:
        """The error this fault adds to ``cup``'s weighing."""
        if cup < self.from_cup:
            return 0.0
        offset = self.drift_g_per_100_cups * (cup - self.from_cup) / 100.0
        return max(-self.max_offset_g, min(self.max_offset_g, offset))


class SimulatedFaults(_Strict):
    """Device faults of the simulated world that the line should notice (e.g. the drift alarm)."""

    camera_darken: list[CameraLaneFault] = Field(
        default_factory=list, description="Lanes whose camera view darkens, and from when."
    )
    scale_drift: list[ScaleDriftFault] = Field(
        default_factory=list, description="Lanes whose load cell drifts, and from when."
    )

    def scale_offset_g(self, lane: int, cup: int) -> float:
        return sum(f.offset_g(cup) for f in self.scale_drift if f.lane == lane)


class SimulationSettings(_Strict):
    """The simulated product flow: what fruit arrive, and how often cups are odd."""

    seed: int = Field(1, ge=0, description="Seed; the same seed gives the same fruit.")
    empty_cup_rate: float = Field(0.02, ge=0, le=1, description="Share of cups without fruit.")
    double_fruit_rate: float = Field(0.005, ge=0, le=1, description="Share of cups with two fruit.")
    defect_rate: float = Field(0.15, ge=0, le=1, description="Share of fruit with skin defects.")
    faults: SimulatedFaults = Field(
        default_factory=SimulatedFaults,
        description="Device faults to provoke: a lane's camera view darkening, a lane's scale drifting.",
    )
    world: WorldSettings = Field(
        default_factory=WorldSettings,
        description="The simulated world process (gradeline sim line): cycle, camera stream, "
        "indicators, cold rooms, truth log.",
    )
