"""Typed Modbus errors: every failure names the device, the unit id and the register address.

They extend the ``drivers.interfaces`` hierarchy so the line runtime and the cold-chain code
can handle "no valid value" the same way for every device kind. pymodbus exceptions are
converted here, once, at the bus boundary, and chained with ``from``.
"""

from __future__ import annotations

from drivers.interfaces import CorruptFrame, DeviceDisconnected, DeviceError, DeviceTimeout


def _where(device_id: int, table: str, address: int) -> str:
    return f"unit {device_id} {table} @{address}"


class ModbusError(DeviceError):
    """Base of Modbus failures; carries where the request went."""

    def __init__(self, device: str, device_id: int, table: str, address: int, message: str) -> None:
        super().__init__(device, f"{_where(device_id, table, address)}: {message}")
        self.device_id = device_id
        self.table = table
        self.address = address


class ModbusTimeout(ModbusError, DeviceTimeout):
    """No answer within the timeout (after the configured resends)."""


class ModbusDisconnected(ModbusError, DeviceDisconnected):
    """The TCP connection or serial port is not usable."""


class ModbusCorruptResponse(ModbusError, CorruptFrame):
    """Bytes came back but no valid frame: bad CRC, garbage, truncation, wrong shape."""


class ModbusExceptionResponse(ModbusError):
    """The device answered with a Modbus exception (e.g. 2 = illegal data address)."""

    def __init__(
        self, device: str, device_id: int, table: str, address: int, exception_code: int
    ) -> None:
        super().__init__(
            device,
            device_id,
            table,
            address,
            f"Modbus exception {exception_code} ({_EXCEPTION_NAMES.get(exception_code, 'unknown')})",
        )
        self.exception_code = exception_code


class ModbusConfigError(ValueError):
    """A register map or profile is invalid (raised at start, not while polling)."""


_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
