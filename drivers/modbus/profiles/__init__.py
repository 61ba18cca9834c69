"""Built-in register-map profiles, one JSON data file per device model.

A profile is a starting point to verify on the real unit; a site overrides it by listing
``registers`` inline in the sensor's config.
"""

from __future__ import annotations

import json
from importlib import resources

from pydantic import ValidationError

from drivers.modbus.errors import ModbusConfigError
from drivers.modbus.settings import ModbusSensorSettings, RegisterSpec


def profile_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".json")
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".json")
    )


def load_profile(name: str) -> list[RegisterSpec]:
    """The register map of built-in profile ``name``."""
    path = resources.files(__package__) / f"{name}.json"
    if not path.is_file():
        raise ModbusConfigError(
            f"unknown Modbus profile {name!r}; built-in: {', '.join(profile_names())}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [RegisterSpec.model_validate(r) for r in data["registers"]]
    except (KeyError, json.JSONDecodeError, ValidationError) as exc:
        raise ModbusConfigError(f"profile {name!r} is invalid: {exc}") from exc


def register_map(settings: ModbusSensorSettings) -> list[RegisterSpec]:
    """The register map a sensor uses: inline registers win over the named profile."""
    if settings.registers is not None:
        return list(settings.registers)
    if settings.profile is None:
        raise ModbusConfigError(f"{settings.name}: needs a profile or registers")
    return load_profile(settings.profile)
