"""Cold-chain config: rooms, which sensors each has, their bands and alarm timings, retention.

Part of the line config (``[coldchain]`` in the line's TOML). Sensor names refer to the line's
``[[sensors]]``; the cross-check is in ``api.config.LineConfig``. A line with sensors and no
rooms gets one room per sensor (named like it) storing the recipe's product.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grading.alarms import PRIORITIES
from grading.coldchain.bands import PRODUCT_BANDS, Band

Product = Literal["cherry", "mango", "pomegranate", "apple"]
Priority = Literal["urgent", "high", "medium", "low"]
assert set(PRIORITIES) == {"urgent", "high", "medium", "low"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlarmTimings(_Strict):
    """On-delays, off-delays, deadbands and priorities of a room's alarms (DOMAIN s.7 defaults)."""

    high_on_delay_s: float = Field(900.0, ge=0, le=86400, description="High temperature must last this long (15 min).")
    low_on_delay_s: float = Field(300.0, ge=0, le=86400, description="Low temperature must last this long (5 min).")
    humidity_on_delay_s: float = Field(1800.0, ge=0, le=86400, description="Low humidity must last this long (30 min).")
    off_delay_s: float = Field(60.0, ge=0, le=86400, description="Back in band this long before an alarm clears.")
    temperature_deadband_c: float = Field(0.3, ge=0, le=5, description="A high/low alarm clears this far inside its limit.")
    humidity_deadband_ratio: float = Field(0.02, ge=0, le=0.2, description="The humidity alarm clears this far above its limit.")
    stale_after_s: float = Field(300.0, gt=0, le=86400, description="No reading this long raises the stale alarm (5 min).")
    door_open_max_s: float = Field(300.0, ge=0, le=86400, description="A door open longer than this raises its alarm.")
    high_priority: Priority = Field("high", description="Priority of the high-temperature alarm.")
    low_priority: Priority = Field("high", description="Priority of the low-temperature alarm (chilling, freezing).")
    humidity_priority: Priority = Field("medium", description="Priority of the low-humidity alarm.")
    stale_priority: Priority = Field("high", description="Priority of the stale-sensor alarm.")
    door_priority: Priority = Field("medium", description="Priority of the door-open alarm.")


class RoomSettings(_Strict):
    name: str = Field(min_length=1, max_length=64, description="Room name, used in the API, alarms and metrics.")
    purpose: Literal["storage", "precooling"] = Field("storage", description="A cold store or a pre-cooling room.")
    air_sensor: str | None = Field(
        None, min_length=1, description="The [[sensors]] name of the room's air temperature/humidity sensor (default: the room's name)."
    )
    door_sensor: str | None = Field(None, min_length=1, description="The [[sensors]] name whose 'door' register is the door contact.")
    core_probes: list[str] = Field(default_factory=list, description="[[sensors]] names of fruit-core probes in the room.")
    product: Product | None = Field(None, description="Product stored: picks the default band (cherry, mango, pomegranate, apple).")
    setpoint_c: float | None = Field(None, ge=-40, le=40, description="Overrides the product's setpoint.")
    temperature_low_c: float | None = Field(None, ge=-40, le=40, description="Overrides the product's low limit.")
    temperature_high_c: float | None = Field(None, ge=-40, le=40, description="Overrides the product's high limit.")
    humidity_low_ratio: float | None = Field(None, ge=0, le=1, description="Overrides the product's low-humidity limit (0-1).")
    alarms: AlarmTimings = Field(default_factory=AlarmTimings, description="Alarm delays, deadbands and priorities.")

    @model_validator(mode="after")
    def _band_is_ordered(self) -> RoomSettings:
        try:
            self.band()
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("band: ")) from None
        return self

    @property
    def air(self) -> str:
        return self.air_sensor or self.name

    def band(self, default_product: str = "apple") -> Band:
        """The product's band with this room's overrides."""
        base = PRODUCT_BANDS[self.product or (default_product if default_product in PRODUCT_BANDS else "apple")]
        return Band(
            setpoint_c=base.setpoint_c if self.setpoint_c is None else self.setpoint_c,
            temperature_low_c=base.temperature_low_c if self.temperature_low_c is None else self.temperature_low_c,
            temperature_high_c=base.temperature_high_c if self.temperature_high_c is None else self.temperature_high_c,
            humidity_low_ratio=base.humidity_low_ratio if self.humidity_low_ratio is None else self.humidity_low_ratio,
            humidity_target_ratio=base.humidity_target_ratio,
            source=base.source if all(
                v is None for v in (self.setpoint_c, self.temperature_low_c, self.temperature_high_c, self.humidity_low_ratio)
            ) else f"room {self.name} config over: {base.source}",
        )


class ColdchainSettings(_Strict):
    rooms: list[RoomSettings] = Field(
        default_factory=list, description="Cold and pre-cooling rooms (none: one storage room per [[sensors]] entry)."
    )
    retention_days: float = Field(400.0, gt=0, le=36500, description="Minute readings older than this are deleted.")
    flood_alarms: int = Field(10, ge=1, le=1000, description="More alarms than this per flood window is a flood (ISA-18.2: 10).")
    flood_window_s: float = Field(600.0, gt=0, le=86400, description="The flood window (ISA-18.2: 10 minutes).")

    @model_validator(mode="after")
    def _unique(self) -> ColdchainSettings:
        names = [r.name for r in self.rooms]
        if len(set(names)) != len(names):
            raise ValueError("rooms: room names must be unique")
        return self

    def rooms_for(self, sensor_names: list[str]) -> list[RoomSettings]:
        """The configured rooms, or one storage room per sensor."""
        if self.rooms:
            return list(self.rooms)
        return [RoomSettings(name=name) for name in sensor_names]
