"""Typed errors of weighing indicators, on top of the shared DeviceError hierarchy.

Transport and framing faults use the shared classes (``DeviceTimeout``, ``DeviceDisconnected``,
``CorruptFrame``). The classes here are for VALID answers that still carry no usable weight:
the indicator said it is over range, busy, or refused a command.
"""

from __future__ import annotations

from typing import Literal

from drivers.interfaces import DeviceError


class ScaleRangeError(DeviceError):
    """The indicator reports the load outside its weighing range (overload or underload)."""

    def __init__(
        self, device: str, direction: Literal["over", "under", "out"], message: str
    ) -> None:
        super().__init__(device, message)
        self.direction = direction


class ScaleNotReady(DeviceError):
    """The indicator understood the command but cannot execute it now (MT-SICS ``I`` status)."""


class ScaleCommandError(DeviceError):
    """The indicator rejected a command (MT-SICS ``ES`` syntax, ``ET`` transmission, ``EL`` logical)."""

    def __init__(self, device: str, code: str, message: str) -> None:
        super().__init__(device, message)
        self.code = code


class ScaleCommandUnsupported(DeviceError):
    """The indicator's protocol has no such command (zero/tare on a continuous-output stream)."""
