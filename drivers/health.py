"""Device health, one primitive for every driver and for the runtime.

Owns two small things that every device needs and that used to be written once per driver:

* ``FaultState``: whether a device is faulted, since when, why, and how often; a fault is
  logged once when it starts and once when it clears, never on every failed poll.
* ``Backoff``: when the next reconnect attempt is allowed (doubling from ``initial_s`` up to
  ``max_s``, reset by a success).

Both take the clock as a parameter, so tests move a fake clock instead of sleeping. Neither
does I/O nor knows the device kind; the driver decides what counts as a fault.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Clock = Callable[[], float]

HealthState = Literal["unknown", "up", "down"]


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """What the API and /metrics show of one device."""

    device: str
    state: HealthState
    since_s: float | None  # clock time of the last change of state
    faults: int  # fault episodes started (a fault lasting many polls counts once)
    errors: int  # failed operations, every one
    last_error: str | None


class FaultState:
    """A device's fault state, logged once when a fault starts and once when it clears.

    ``consequence`` says what the fault means for the line ("its lane's fruit go to
    recheck"); it is appended to the start-of-fault log line.
    """

    def __init__(
        self,
        device: str,
        *,
        clock: Clock = time.monotonic,
        consequence: str = "",
        logger: logging.Logger | None = None,
    ) -> None:
        self.device = device
        self.consequence = consequence
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        self._state: HealthState = "unknown"
        self._since_s: float | None = None
        self.faults = 0
        self.errors = 0
        self._errors_in_fault = 0
        self.last_error: str | None = None

    @property
    def faulted(self) -> bool:
        return self._state == "down"

    @property
    def state(self) -> HealthState:
        return self._state

    def fault(self, error: BaseException | str) -> None:
        """An operation failed in a way that makes the device unusable until it recovers."""
        self.errors += 1
        self.last_error = str(error)
        self._errors_in_fault += 1
        if self._state != "down":
            self.faults += 1
            self._errors_in_fault = 1
            self._state, self._since_s = "down", self._clock()
            suffix = f"; {self.consequence}" if self.consequence else ""
            # device errors name their device already (DeviceError): say it once
            text = str(error).removeprefix(f"{self.device}: ")
            self._log.warning("%s: fault: %s%s", self.device, text, suffix)

    def error(self, error: BaseException | str) -> None:
        """An operation failed but the device stays usable (one corrupt frame in a live stream)."""
        self.errors += 1
        self.last_error = str(error)
        self._log.debug("%s: %s", self.device, error)

    def ok(self) -> None:
        """An operation succeeded."""
        if self._state == "up":
            return
        if self._state == "down":
            assert self._since_s is not None
            self._log.info(
                "%s: recovered after %d failed attempts in %.1f s",
                self.device, self._errors_in_fault, self._clock() - self._since_s,
            )
        self._state, self._since_s = "up", self._clock()

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(self.device, self._state, self._since_s, self.faults, self.errors, self.last_error)


class Backoff:
    """Reconnect pacing: after a failure wait ``delay_s`` (doubling up to ``max_s``); a success resets it."""

    def __init__(self, initial_s: float = 0.1, max_s: float = 2.0, *, clock: Clock = time.monotonic) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self._clock = clock
        self.delay_s = initial_s
        self._next_attempt_s = float("-inf")

    def ready(self) -> bool:
        """Whether an attempt is allowed now."""
        return self._clock() >= self._next_attempt_s

    def wait_s(self) -> float:
        """Seconds until the next attempt is allowed (0 if now)."""
        return max(0.0, self._next_attempt_s - self._clock())

    def failed(self) -> None:
        self._next_attempt_s = self._clock() + self.delay_s
        self.delay_s = min(self.delay_s * 2, self.max_s)

    def succeeded(self) -> None:
        self.delay_s = self.initial_s
        self._next_attempt_s = float("-inf")
