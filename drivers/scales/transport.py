"""Byte transports to a serial indicator, blocking, used from one thread per port.

``serial.serial_for_url`` covers a device path (``/dev/ttyUSB0``, a pty slave) and
``rfc2217://host:port``. ``socket://host:port`` (an RS-232/485-to-Ethernet gateway in raw TCP
mode) gets a plain socket instead (``TcpTransport``): pyserial's socket handler reports at most
one byte waiting, so a line read through it costs a pair of syscalls per byte, and eight lanes
streaming at 100 lines a second then cost a quarter of a core. ``open_transport`` picks one by
the URL. A read blocks for at most the
port's read timeout; only the scale's reader thread calls any of this, so the event loop never
waits on a serial port. pyserial errors are converted here, once, into the shared
``DeviceDisconnected`` / ``DeviceTimeout`` types, chained with ``from``.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
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
        """Wait up to the read timeout for data; return what has arrived (b"" if nothing)."""
        ...

    def write(self, data: bytes) -> None: ...

    def discard_input(self) -> None:
        """Drop bytes already received (late replies to an earlier command)."""
        ...

    def close(self) -> None: ...


def open_transport(
    url: str,
    *,
    device: str,
    baudrate: int,
    read_timeout_s: float,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: int = 1,
) -> ByteTransport:
    """The transport for ``url``: a plain TCP socket for ``socket://``, else a pyserial port."""
    if url.startswith("socket://"):
        return TcpTransport.open(url, device=device, read_timeout_s=read_timeout_s)
    return SerialUrlTransport.open(
        url, device=device, baudrate=baudrate, read_timeout_s=read_timeout_s, bytesize=bytesize, parity=parity,
        stopbits=stopbits,
    )


class TcpTransport:
    """``socket://host:port``: one TCP connection, read with one ``recv`` per wake-up. Serial
    settings (baud, parity) belong to the gateway and are not sent."""

    def __init__(self, sock: socket.socket, device: str, url: str, read_timeout_s: float) -> None:
        self._sock = sock
        self._device = device
        self._url = url
        self._read_timeout_s = read_timeout_s

    @classmethod
    def open(cls, url: str, *, device: str, read_timeout_s: float) -> TcpTransport:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"{device}: {url!r} is not socket://host:port")
        try:
            sock = socket.create_connection((parts.hostname, parts.port), timeout=max(1.0, read_timeout_s))
        except OSError as exc:
            raise DeviceDisconnected(device, f"cannot open {url}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # commands go out at once
        sock.settimeout(read_timeout_s)
        return cls(sock, device, url, read_timeout_s)

    def read(self, max_bytes: int) -> bytes:
        try:
            data = self._sock.recv(max_bytes)  # whatever has arrived, up to the read timeout
        except TimeoutError:
            return b""
        except OSError as exc:
            raise DeviceDisconnected(self._device, f"read from {self._url} failed: {exc}") from exc
        if not data:
            raise DeviceDisconnected(self._device, f"{self._url}: the gateway closed the connection")
        return data

    def write(self, data: bytes) -> None:
        try:
            self._sock.settimeout(1.0)  # a stuck write (a full gateway buffer) must not hang the thread
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise DeviceTimeout(self._device, f"write to {self._url} timed out") from exc
        except OSError as exc:
            raise DeviceDisconnected(self._device, f"write to {self._url} failed: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(self._read_timeout_s)

    def discard_input(self) -> None:
        try:
            self._sock.setblocking(False)
            drained = 0
            while drained < 65536:
                try:
                    chunk = self._sock.recv(65536)
                except BlockingIOError:
                    break
                if not chunk:
                    raise DeviceDisconnected(self._device, f"{self._url}: the gateway closed the connection")
                drained += len(chunk)
        except OSError as exc:
            raise DeviceDisconnected(self._device, f"{self._url}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(self._read_timeout_s)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


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
        read_timeout_s: float,
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
                timeout=read_timeout_s,
                **bounded,
            )
        except _PORT_ERRORS as exc:
            raise DeviceDisconnected(device, f"cannot open {url}: {exc}") from exc
        return cls(port, device, url)

    def read(self, max_bytes: int) -> bytes:
        try:
            data = self._port.read(1)  # blocks up to the read timeout for the first byte
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
