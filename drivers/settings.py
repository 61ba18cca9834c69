"""Config models for reaching real devices (ports, addresses, register maps).

These are parts of the line config (``grading/config.py``); they only describe how to
reach a device, never what to do with its values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SerialScaleSettings(_Strict):
    """A serial weighing indicator, one per lane, reached through pyserial URLs."""

    kind: Literal["mt-sics", "toledo", "xk3190"] = Field(
        description="Indicator protocol: MT-SICS request/response, Toledo continuous, XK3190-A9 continuous."
    )
    ports: list[str] = Field(
        min_length=1,
        description="One pyserial URL per lane: /dev/ttyUSB0, socket://host:port, rfc2217://host:port.",
    )
    baudrate: int = Field(9600, ge=300, le=115200, description="Serial baud rate.")
    timeout_s: float = Field(0.3, gt=0, le=10, description="Time to wait for one weight.")


class PlcModbusSettings(_Strict):
    """The line PLC, reached over Modbus TCP; register contract in docs/plc-register-contract.md."""

    kind: Literal["modbus"] = Field(description="Modbus TCP PLC.")
    host: str = Field(description="PLC address.")
    port: int = Field(502, ge=1, le=65535, description="Modbus TCP port.")
    device_id: int = Field(1, ge=0, le=247, description="Modbus unit id.")
    timeout_s: float = Field(0.5, gt=0, le=10, description="Per-request timeout.")
