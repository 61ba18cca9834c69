"""Storage bands: the temperature and humidity a room must hold, per product, with sources.

A room's band comes from the product stored in it (``PRODUCT_BANDS``) unless the room's config
sets its own values. Figures are from DOMAIN.md section 7 (storage targets and the suggested
alarm defaults: HIGH = setpoint + 2 degC for 15 min; LOW = the product's chilling or freezing
limit + 0.5 degC for 5 min; RH LOW < 85 % for 30 min; SENSOR STALE = no reading for 5 min).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Band:
    """What a room holds. ``temperature_high_c`` / ``temperature_low_c`` are the alarm limits
    (out of band = outside them); ``setpoint_c`` is what the room is run at."""

    setpoint_c: float
    temperature_low_c: float
    temperature_high_c: float
    humidity_low_ratio: float
    humidity_target_ratio: tuple[float, float]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.temperature_low_c < self.setpoint_c < self.temperature_high_c:
            raise ValueError(
                f"band: needs low < setpoint < high, got {self.temperature_low_c} / {self.setpoint_c} / "
                f"{self.temperature_high_c} degC"
            )
        if not 0 <= self.humidity_low_ratio <= 1:
            raise ValueError("band: humidity_low_ratio is a ratio (0-1)")

    def temperature_out(self, temperature_c: float) -> bool:
        return not self.temperature_low_c <= temperature_c <= self.temperature_high_c


PRODUCT_BANDS: dict[str, Band] = {
    # Sweet cherry: -1 to 0 degC, 90-95 % RH; highest freezing point about -1.8 degC.
    "cherry": Band(
        setpoint_c=-0.5, temperature_low_c=-1.3, temperature_high_c=1.5, humidity_low_ratio=0.85,
        humidity_target_ratio=(0.90, 0.95),
        source="DOMAIN.md s.7: Table L3.3 (AH66-derived, studylib.net); apimex.hu; isofruit.eu; "
        "UC Davis CA recommendations (RH). Low = freezing point -1.8 + 0.5; high = setpoint + 2.",
    ),
    # Mango, mature-green: 13 degC, 90-95 % RH; chilling injury below about 10-13 degC.
    "mango": Band(
        setpoint_c=13.0, temperature_low_c=10.5, temperature_high_c=15.0, humidity_low_ratio=0.85,
        humidity_target_ratio=(0.90, 0.95),
        source="DOMAIN.md s.7: UC Davis postharvest recommendations (mirror water-foods.com); "
        "Table L3.3. Low = chilling limit 10 + 0.5; high = setpoint + 2.",
    ),
    # Pomegranate: 5 degC up to 2 months, 7-10 degC for longer; chilling injury below 5 degC
    # over weeks; 'Mengzi' did best at 2 degC (a per-cultivar setpoint belongs in the room).
    "pomegranate": Band(
        setpoint_c=7.0, temperature_low_c=5.5, temperature_high_c=9.0, humidity_low_ratio=0.85,
        humidity_target_ratio=(0.90, 0.95),
        source="DOMAIN.md s.7: UC Davis recommendations (ethylenecontrol.com mirror); UC postharvest "
        "disorder page; cargohandbook.com. Low = chilling limit 5 + 0.5; high = setpoint + 2.",
    ),
    # Apple: -1 to 4 degC by cultivar, 90-95 % RH; highest freezing point -1.5 degC.
    "apple": Band(
        setpoint_c=1.0, temperature_low_c=-1.0, temperature_high_c=3.0, humidity_low_ratio=0.85,
        humidity_target_ratio=(0.90, 0.95),
        source="DOMAIN.md s.7: Table L3.3; centuryfarms.net (USDA range); Iowa State extension; "
        "Prange & Wright 2023, Foods 12:466. Low = freezing point -1.5 + 0.5; high = setpoint + 2.",
    ),
}
