"""Domain settings shared by the line's configuration and the domain code: an outlet's
settings and one issue found in a file (config or recipe).

The application-level config (which devices, the API, the database, the whole line file) is
``api.config``, beside the composition root: the domain package knows no device or server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A settings model: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OutletSettings(Strict):
    number: int = Field(ge=1, le=255, description="Outlet (drop) number as the PLC knows it.")
    name: str = Field("", max_length=64, description="Display name on the HMI.")
    offset_cups: int = Field(ge=1, le=10000, description="Distance from the inspection point in cups.")
    role: Literal["pack", "recheck", "cull"] = Field(
        "pack", description="pack: graded fruit; recheck: fruit without a valid weight or flagged; cull: out of grade."
    )
    quality_classes: list[str] = Field(
        default_factory=list, description="Quality classes this outlet takes (empty = any)."
    )
    size_classes: list[str] = Field(default_factory=list, description="Size classes this outlet takes (empty = any).")


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"
