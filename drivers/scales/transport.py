"""Byte transports to a serial indicator: pyserial URLs, blocking, used from one thread per port.

``serial.serial_for_url`` covers a device path (``/dev/ttyUSB0``, a pty slave), ``socket://host:port``
for RS-232/485-to-Ethernet gateways and ``rfc2217://host:port``. Everything here blocks for at
most the port's poll interval; the driver runs it in its own executor thread so the event loop
never waits on a serial port. pyserial errors are converted here, once, into the shared
``DeviceDisconnected`` / ``DeviceTimeout`` types, chained with ``from``.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import serial

from drivers.interfaces import DeviceDisconnected, DeviceTimeout

try:
    import termios

    # pyserial lets termios.error (not an OSError) escape from tcflush/tcsetattr on a dead pty.
    _PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # not POSIX
    _PORT_ERRORS = (serial.SerialException, OSError)


class ByteTransport(Protocol):
    """An open byte pipe to one indicator. All methods block (briefly) and are thread-confined."""

    def read(self, max_bytes: int) -> bytes:
        """Wait up to the poll interval for data; return what has arrived (b"" if nothing)."""
        ...

    def write(self, data: bytes) -> None: ...

    def discard_input(self) -> None:
        """Drop bytes already received (late replies to an earlier command)."""
        ...

    def close(self) -> None: ...


class SerialUrlTransport:
    """A pyserial port opened from a URL."""

    def __init__(self, port: serial.SerialBase, device: str, url: str) -> None:
        self._port = port
        self._device = device
        self._url = url

    @classmethod
    def open(
        cls,
        url: str,
        *,
        device: str,
        baudrate: int,
        poll_s: float,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
    ) -> SerialUrlTransport:
        """Open the port. Raises DeviceDisconnected if it is not there; ValueError for a bad URL."""
        try:
            # A stuck write (flow control, a full gateway buffer) must not hang the port thread;
            # pyserial's rfc2217 client cannot bound writes and refuses the option.
            bounded = {} if url.startswith("rfc2217://") else {"write_timeout": 1.0}
            port = serial.serial_for_url(
                url,
                baudrate=baudrate,
                bytesize=bytesize,
                parity=parity,
                stopbits=stopbits,
                timeout=poll_s,
                **bounded,
            )
        except _PORT_ERRORS as exc:
            raise DeviceDisconnected(device, f"cannot open {url}: {exc}") from exc
        return cls(port, device, url)

    def read(self, max_bytes: int) -> bytes:
        try:
            data = self._port.read(1)  # blocks up to the poll interval for the first byte
            # in_waiting is a byte count on real ports and 0/1 on socket://, so loop until dry.
            while data and len(data) < max_bytes and (waiting := self._port.in_waiting):
                data += self._port.read(min(waiting, max_bytes - len(data)))
        except _PORT_ERRORS as exc:
            raise DeviceDisconnected(self._device, f"read from {self._url} failed: {exc}") from exc
        return bytes(data)

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeout(self._device, f"write to {self._url} timed out") from exc
        except _PORT_ERRORS as exc:
            raise DeviceDisconnected(self._device, f"write to {self._url} failed: {exc}") from exc

    def discard_input(self) -> None:
        # Drained locally rather than with reset_input_buffer(): over rfc2217 that is a PURGE
        # round trip which blocks up to pyserial's 3 s network timeout on a dead link.
        try:
            drained = 0
            while drained < 65536 and (waiting := self._port.in_waiting):
                drained += len(self._port.read(waiting))
        except _PORT_ERRORS as exc:
            raise DeviceDisconnected(self._device, f"{self._url}: {exc}") from exc

    def close(self) -> None:
        # Closing a port whose cable is gone may fail; there is nothing left to release then.
        with contextlib.suppress(*_PORT_ERRORS):
            self._port.close()
