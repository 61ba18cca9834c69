"""Config models for Modbus devices: the PLC, sensors, their transports and register maps.

Register maps are data: a sensor names a built-in profile (``drivers/modbus/profiles/*.json``)
or lists its registers inline. Nothing in the driver code knows a device model's addresses.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlcModbusSettings(_Strict):
    """The line PLC, reached over Modbus TCP; register contract in docs/plc-register-contract.md."""

    kind: Literal["modbus"] = Field(description="Modbus TCP PLC.")
    host: str = Field(description="PLC address.")
    port: int = Field(default=502, ge=1, le=65535, description="Modbus TCP port.")
    device_id: int = Field(default=1, ge=0, le=247, description="Modbus unit id.")
    timeout_s: float = Field(default=0.5, gt=0, le=10, description="Per-request timeout.")
    retries: int = Field(default=0, ge=0, le=5, description="Resends per request before it fails.")
    max_registers_per_write: int = Field(
        default=120,
        ge=1,
        le=123,
        description="Largest FC16 batch (the protocol allows 123 registers).",
    )


# -- register maps ------------------------------------------------------------------------

RegisterTable = Literal["coil", "discrete", "input", "holding"]
RegisterType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32"]


class RegisterSpec(_Strict):
    """One value in a device's register map.

    The decoded value is ``raw * scale + offset`` in ``unit``. 32-bit types span two registers;
    ``word_order`` says which comes first, ``byte_swap`` swaps the two bytes inside each
    register (the "BADC"/"DCBA" devices that pymodbus cannot express).
    """

    name: str = Field(
        min_length=1,
        max_length=64,
        description="Quantity name; 'temperature', 'humidity' and 'door' (a bool: the door contact) feed SensorReading.",
    )
    table: RegisterTable = Field(
        description="coil (FC1), discrete (FC2), input (FC4) or holding (FC3)."
    )
    address: int = Field(
        ge=0, le=65535, description="Protocol (PDU) address, 0-based as on the wire."
    )
    type: RegisterType = Field(
        default="int16", description="Data type; 'bool' for coils and discrete inputs."
    )
    word_order: Literal["big", "little"] = Field(
        default="big", description="32-bit values: big = high word first."
    )
    byte_swap: bool = Field(default=False, description="Swap the bytes inside each register.")
    scale: float = Field(default=1.0, description="Multiply the raw value by this.")
    offset: float = Field(default=0.0, description="Then add this.")
    unit: str = Field(
        default="", max_length=16, description="Unit after scaling: celsius, percent, ratio, ..."
    )

    @model_validator(mode="after")
    def _type_fits_table(self) -> RegisterSpec:
        bit_table = self.table in ("coil", "discrete")
        if bit_table != (self.type == "bool"):
            raise ValueError(f"{self.name}: type {self.type!r} does not fit table {self.table!r}")
        return self


# -- transports ---------------------------------------------------------------------------


class ModbusTcpTransport(_Strict):
    kind: Literal["tcp"] = Field(description="Modbus TCP (MBAP framing).")
    host: str = Field(description="Device or gateway address.")
    port: int = Field(default=502, ge=1, le=65535, description="TCP port.")


class ModbusRtuOverTcpTransport(_Strict):
    kind: Literal["rtu-over-tcp"] = Field(
        description="RTU frames through a transparent serial-to-Ethernet gateway."
    )
    host: str = Field(description="Gateway address.")
    port: int = Field(default=502, ge=1, le=65535, description="Gateway TCP port.")


class ModbusRtuSerialTransport(_Strict):
    kind: Literal["rtu"] = Field(description="Modbus RTU on a serial line (RS-485 adapter).")
    port: str = Field(
        min_length=1, description="Serial device, e.g. /dev/ttyUSB0 (also a pty path)."
    )
    baudrate: int = Field(
        default=9600,
        ge=1200,
        le=115200,
        description="Most cheap sensors ship at 9600; pymodbus defaults to 19200.",
    )
    parity: Literal["N", "E", "O"] = Field(default="N", description="Parity.")
    bytesize: Literal[7, 8] = Field(default=8, description="Data bits.")
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits.")


ModbusTransport = Annotated[
    ModbusTcpTransport | ModbusRtuOverTcpTransport | ModbusRtuSerialTransport,
    Field(discriminator="kind"),
]


class ModbusSensorSettings(_Strict):
    """A cold-room temperature / humidity sensor (or room controller) on a Modbus bus.

    Sensors sharing a transport (same serial port, or same gateway host:port) share one bus:
    one connection and one lock, so their requests never interleave on the wire.
    """

    name: str = Field(
        min_length=1, max_length=64, description="Device name used in errors, logs and metrics."
    )
    transport: ModbusTransport = Field(description="How to reach the bus the device is on.")
    device_id: int = Field(default=1, ge=1, le=247, description="Modbus unit id (slave address).")
    profile: str | None = Field(
        default=None,
        description="Built-in register-map profile (e.g. 'xy-md02', 'srth100'); ignored if registers is set.",
    )
    registers: list[RegisterSpec] | None = Field(
        default=None, min_length=1, description="Inline register map."
    )
    poll_interval_s: float = Field(
        default=10.0, ge=0.05, le=3600, description="Time between polls of this device."
    )
    timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="Per-request timeout (pymodbus default 3 s is too slow for polling).",
    )
    retries: int = Field(
        default=0, ge=0, le=3, description="Resends per request; the next poll is the real retry."
    )
    stale_after_polls: float = Field(
        default=2.0,
        ge=1,
        le=100,
        description="Readings older than this many poll intervals make the device stale.",
    )

    @model_validator(mode="after")
    def _has_map(self) -> ModbusSensorSettings:
        if self.registers is None and self.profile is None:
            raise ValueError(f"{self.name}: needs a profile or registers")
        return self
