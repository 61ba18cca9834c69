"""One Modbus bus: a pymodbus client, one lock, typed errors, our own reconnect.

A *bus* is one wire: a Modbus TCP device, an RTU-over-TCP gateway, or a serial port. Every
device on it shares this object, so requests never interleave on the wire (RS-485 is
half-duplex; a gateway serialises anyway). This layer knows nothing about what registers mean.

pymodbus's own reconnect loop is disabled (``reconnect_delay=0``): reconnect happens here,
on the next request after a failure, with a short capped backoff, so that a device that comes
back is talked to again within a couple of seconds and the poller decides when to retry.
pymodbus exceptions are converted once, here, into ``drivers.modbus.errors``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.health import Backoff
from drivers.modbus.errors import (
    ModbusCorruptResponse,
    ModbusDisconnected,
    ModbusError,
    ModbusExceptionResponse,
    ModbusTimeout,
)
from drivers.modbus.settings import (
    ModbusRtuOverTcpTransport,
    ModbusRtuSerialTransport,
    ModbusTcpTransport,
    RegisterTable,
)

log = logging.getLogger(__name__)

ModbusTransportSettings = ModbusTcpTransport | ModbusRtuOverTcpTransport | ModbusRtuSerialTransport

# Per request the protocol allows at most 125 registers read, 123 written, 2000 bits read.
MAX_READ_REGISTERS = 125
MAX_WRITE_REGISTERS = 123
MAX_READ_BITS = 2000


def bus_key(transport: ModbusTransportSettings) -> str:
    """Devices with the same key share one bus (one connection, one lock)."""
    if isinstance(transport, ModbusRtuSerialTransport):
        return f"rtu:{transport.port}"
    return f"{transport.kind}:{transport.host}:{transport.port}"


def _make_client(
    transport: ModbusTransportSettings,
    timeout_s: float,
    retries: int,
    trace: Callable[[bool, bytes], bytes],
) -> Any:
    if isinstance(transport, ModbusRtuSerialTransport):
        return AsyncModbusSerialClient(
            transport.port,
            framer=FramerType.RTU,
            baudrate=transport.baudrate,
            bytesize=transport.bytesize,
            parity=transport.parity,
            stopbits=transport.stopbits,
            timeout=timeout_s,
            retries=retries,
            reconnect_delay=0,
            trace_packet=trace,
        )
    framer = (
        FramerType.RTU if isinstance(transport, ModbusRtuOverTcpTransport) else FramerType.SOCKET
    )
    return AsyncModbusTcpClient(
        transport.host,
        port=transport.port,
        framer=framer,
        timeout=timeout_s,
        retries=retries,
        reconnect_delay=0,
        trace_packet=trace,
    )


def values_from_response(
    response: Any, device: str, device_id: int, table: RegisterTable, address: int, count: int
) -> list[int]:
    """The values of a decoded read response, checked against what was asked.

    A reply of the wrong shape (another function, fewer values) is corrupt, never padded.
    """
    if response.isError():
        raise ModbusExceptionResponse(
            device, device_id, table, address, int(getattr(response, "exception_code", 0))
        )
    expected_fc = _READ_FUNCTION[table]
    if response.function_code != expected_fc:
        raise ModbusCorruptResponse(
            device,
            device_id,
            table,
            address,
            f"asked function {expected_fc}, got {response.function_code}",
        )
    if table in ("coil", "discrete"):
        bits = list(getattr(response, "bits", []))
        if len(bits) < count:
            raise ModbusCorruptResponse(
                device, device_id, table, address, f"asked {count} bits, got {len(bits)}"
            )
        return [1 if b else 0 for b in bits[:count]]
    registers = list(getattr(response, "registers", []))
    if len(registers) != count:
        raise ModbusCorruptResponse(
            device, device_id, table, address, f"asked {count} registers, got {len(registers)}"
        )
    return registers


_READ_FUNCTION = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


class ModbusBus:
    """One bus and its lock. ``read``/``write_registers`` raise ``ModbusError`` subclasses."""

    def __init__(
        self,
        transport: ModbusTransportSettings,
        *,
        timeout_s: float = 0.5,
        retries: int = 0,
        clock: Callable[[], float] = time.monotonic,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 2.0,
    ) -> None:
        self.transport = transport
        self.key = bus_key(transport)
        self.timeout_s = timeout_s
        self.retries = retries
        self._clock = clock
        self._reconnect = Backoff(reconnect_min_s, reconnect_max_s, clock=clock)
        self._lock = asyncio.Lock()
        self._rx_bytes = 0
        self._client: Any = None
        self.requests = 0
        self.failures = 0
        self.connects = 0

    def _trace(self, sending: bool, data: bytes) -> bytes:
        # Bytes that arrive but never form a valid answer mean corruption, not silence.
        if not sending:
            self._rx_bytes += len(data)
        return data

    @property
    def connected(self) -> bool:
        return bool(self._client is not None and self._client.connected)

    async def connect(self, device: str = "", device_id: int = 0) -> None:
        """Open the connection now (raises ModbusDisconnected)."""
        async with self._lock:
            self._reconnect.succeeded()  # an explicit connect is tried now, whatever the backoff
            await self._ensure_connected(device or self.key, device_id, "connect", 0)

    async def _ensure_connected(
        self, device: str, device_id: int, table: str, address: int
    ) -> None:
        if self.connected:
            return
        if not self._reconnect.ready():
            raise ModbusDisconnected(
                device,
                device_id,
                table,
                address,
                f"{self.key} down; next reconnect in {self._reconnect.wait_s():.2f} s",
            )
        if self._client is not None:
            self._client.close()
        self._client = _make_client(self.transport, self.timeout_s, self.retries, self._trace)
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as exc:
            self._reconnect.failed()
            raise ModbusDisconnected(
                device, device_id, table, address, f"cannot connect to {self.key}: {exc}"
            ) from exc
        if not ok:
            self._reconnect.failed()
            raise ModbusDisconnected(
                device, device_id, table, address, f"cannot connect to {self.key}"
            )
        self.connects += 1
        self._reconnect.succeeded()

    async def _execute(
        self, device: str, device_id: int, table: str, address: int, call: Callable[[Any], Any]
    ) -> Any:
        async with self._lock:
            await self._ensure_connected(device, device_id, table, address)
            self.requests += 1
            self._rx_bytes = 0
            try:
                response = await call(self._client)
            except ConnectionException as exc:
                self.failures += 1
                self._drop_connection()
                raise ModbusDisconnected(
                    device, device_id, table, address, f"connection lost: {exc}"
                ) from exc
            except ModbusIOException as exc:
                self.failures += 1
                if not self._client.connected:
                    self._drop_connection()
                    raise ModbusDisconnected(
                        device, device_id, table, address, "connection lost"
                    ) from exc
                if self._rx_bytes:
                    raise ModbusCorruptResponse(
                        device,
                        device_id,
                        table,
                        address,
                        "reply bytes received but no valid frame (CRC/framing)",
                    ) from exc
                raise ModbusTimeout(
                    device, device_id, table, address, f"no answer within {self.timeout_s} s"
                ) from exc
            except (ModbusException, ValueError, IndexError, KeyError) as exc:
                # pymodbus raises these when a frame passes the CRC but cannot be decoded.
                self.failures += 1
                raise ModbusCorruptResponse(
                    device, device_id, table, address, f"undecodable response: {exc}"
                ) from exc
            # Python 3.11's asyncio.wait_for, which pymodbus awaits each reply with, returns
            # the reply and drops a cancellation that arrives in the same loop turn. The
            # cancelled task would poll on, and a stop that gathers it would wait forever.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            if response.isError():
                self.failures += 1
            return response

    def _drop_connection(self) -> None:
        if self._client is not None:
            self._client.close()
        self._reconnect.failed()

    async def read(
        self, device: str, device_id: int, table: RegisterTable, address: int, count: int
    ) -> list[int]:
        """Read ``count`` registers (or bits, as 0/1) from ``table`` starting at ``address``."""
        limit = MAX_READ_BITS if table in ("coil", "discrete") else MAX_READ_REGISTERS
        if not 1 <= count <= limit:
            raise ValueError(f"count {count} out of range 1..{limit} for {table}")

        def call(client: Any) -> Any:
            method = {
                "coil": client.read_coils,
                "discrete": client.read_discrete_inputs,
                "holding": client.read_holding_registers,
                "input": client.read_input_registers,
            }[table]
            return method(address, count=count, device_id=device_id)

        response = await self._execute(device, device_id, table, address, call)
        return values_from_response(response, device, device_id, table, address, count)

    async def write_registers(
        self, device: str, device_id: int, address: int, values: list[int]
    ) -> None:
        """FC16: write ``values`` to holding registers starting at ``address``."""
        if not 1 <= len(values) <= MAX_WRITE_REGISTERS:
            raise ValueError(f"{len(values)} registers: FC16 writes 1..{MAX_WRITE_REGISTERS}")
        if any(not 0 <= v <= 0xFFFF for v in values):
            raise ValueError("register values must be 0..65535")

        def call(client: Any) -> Any:
            return client.write_registers(address, values, device_id=device_id)

        response = await self._execute(device, device_id, "holding", address, call)
        if response.isError():
            raise ModbusExceptionResponse(
                device, device_id, "holding", address, int(getattr(response, "exception_code", 0))
            )

    async def write_register(self, device: str, device_id: int, address: int, value: int) -> None:
        """FC6: write one holding register."""
        if not 0 <= value <= 0xFFFF:
            raise ValueError("register value must be 0..65535")

        def call(client: Any) -> Any:
            return client.write_register(address, value, device_id=device_id)

        response = await self._execute(device, device_id, "holding", address, call)
        if response.isError():
            raise ModbusExceptionResponse(
                device, device_id, "holding", address, int(getattr(response, "exception_code", 0))
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class BusRegistry:
    """Hands out one ``ModbusBus`` per wire, so devices on one serial port share its lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buses: dict[str, ModbusBus] = {}

    def bus_for(
        self, transport: ModbusTransportSettings, *, timeout_s: float, retries: int
    ) -> ModbusBus:
        key = bus_key(transport)
        bus = self._buses.get(key)
        if bus is None:
            bus = ModbusBus(transport, timeout_s=timeout_s, retries=retries, clock=self._clock)
            self._buses[key] = bus
        return bus

    def buses(self) -> list[ModbusBus]:
        return list(self._buses.values())

    def close(self) -> None:
        for bus in self._buses.values():
            bus.close()


__all__ = ["BusRegistry", "ModbusBus", "ModbusError", "bus_key"]
