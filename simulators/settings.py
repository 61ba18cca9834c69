"""Config models for the simulated devices and the simulated conveyor's fruit.

Simulator scenarios are config like everything else; the composition root hands these to
``simulators/`` and nothing in the domain reads them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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


class SimulationSettings(_Strict):
    """The simulated product flow: what fruit arrive, and how often cups are odd."""

    seed: int = Field(1, ge=0, description="Seed; the same seed gives the same fruit.")
    empty_cup_rate: float = Field(0.02, ge=0, le=1, description="Share of cups without fruit.")
    double_fruit_rate: float = Field(0.005, ge=0, le=1, description="Share of cups with two fruit.")
    defect_rate: float = Field(0.15, ge=0, le=1, description="Share of fruit with skin defects.")
