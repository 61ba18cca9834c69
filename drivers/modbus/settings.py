"""Config models for Modbus devices: the PLC, sensors and their register maps."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlcModbusSettings(_Strict):
    """The line PLC, reached over Modbus TCP; register contract in docs/plc-register-contract.md."""

    kind: Literal["modbus"] = Field(description="Modbus TCP PLC.")
    host: str = Field(description="PLC address.")
    port: int = Field(502, ge=1, le=65535, description="Modbus TCP port.")
    device_id: int = Field(1, ge=0, le=247, description="Modbus unit id.")
    timeout_s: float = Field(0.5, gt=0, le=10, description="Per-request timeout.")
