"""The alarm engine, after ISA-18.2 (ANSI/ISA-18.2-2016, IEC 62682): generic over alarm sources.

Owns each alarm's definition (priority, setpoint, on-delay, off-delay, deadband), its state
machine, shelving, suppression by design and out-of-service, flood counting, and the journal of
every transition. It does not own what a condition means: a source (the cold chain's rooms, the
line's drift detector, ...) reports a condition with ``report_value`` (the engine compares it to
the setpoint, with the deadband) or ``report`` (the source decided: active or not, with the
value it saw). Time comes from an injected monotonic clock (delays, expiries) and an injected
wall clock (journal timestamps). Not thread-safe: one event loop owns it.

States (ISA-18.2 figure 5, our names)::

    normal ──condition held on-delay──► unacknowledged ──ack──► acknowledged
       ▲                                     │                       │
       │ack                      condition clear off-delay   condition clear off-delay
       └───────── returned_unacknowledged ◄──┘                       └──► normal

``shelved`` (an operator's choice, with a reason and an expiry), ``suppressed`` (by design, e.g.
a room's door alarm while it is being loaded) and ``out_of_service`` (maintenance) hide an
alarm: its condition is still tracked, and when it comes back it takes the state the condition
calls for (active: unacknowledged; clear: normal).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal


class AlarmState(StrEnum):
    NORMAL = "normal"
    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


HIDDEN_STATES = (AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE)
# ISA-18.2 recommends three or four priorities; ours, most urgent first.
PRIORITIES = ("urgent", "high", "medium", "low")
Direction = Literal["high", "low", "state"]


class AlarmError(Exception):
    """An alarm command that does not fit the alarm's state (e.g. acknowledging a normal alarm)."""


class UnknownAlarm(AlarmError, KeyError):
    def __init__(self, alarm_id: str) -> None:
        super().__init__(f"no alarm {alarm_id!r}")
        self.alarm_id = alarm_id


@dataclass(frozen=True, slots=True)
class AlarmDefinition:
    """One alarm: what it watches and how it is annunciated.

    ``direction`` high: the condition is ``value > setpoint`` and clears below
    ``setpoint - deadband``; low: ``value < setpoint``, clears above ``setpoint + deadband``;
    state: the source reports active/inactive itself (``report``), e.g. a stale sensor.
    ``on_delay_s``: the condition must hold that long before the alarm raises;
    ``off_delay_s``: it must stay clear that long before the alarm returns to normal.
    """

    alarm_id: str  # unique, stable; used in the API, the journal and metrics (label ``alarm``)
    kind: str  # e.g. temperature_high, humidity_low, sensor_stale, door_open, drift
    source: str  # what it belongs to: a room, a device, a line
    priority: str = "medium"
    direction: Direction = "state"
    setpoint: float | None = None
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    message: str = ""

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ValueError(f"{self.alarm_id}: priority {self.priority!r} is not one of {PRIORITIES}")
        if self.direction != "state" and self.setpoint is None:
            raise ValueError(f"{self.alarm_id}: a {self.direction} alarm needs a setpoint")
        if self.deadband < 0 or self.on_delay_s < 0 or self.off_delay_s < 0:
            raise ValueError(f"{self.alarm_id}: deadband and delays must be >= 0")


@dataclass(frozen=True, slots=True)
class Transition:
    """One journaled change of an alarm's state."""

    alarm_id: str
    at: datetime
    from_state: AlarmState
    to_state: AlarmState
    cause: str  # raised, cleared, acknowledged, shelved, unshelved, shelf_expired, suppressed, ...
    value: float | None = None
    user: str | None = None
    reason: str = ""


@dataclass(slots=True)
class AlarmStatus:
    """An alarm now: its definition, state, the condition behind it and who touched it."""

    definition: AlarmDefinition
    state: AlarmState = AlarmState.NORMAL
    condition: bool = False  # the raw condition with the deadband, before the delays
    active: bool = False  # the condition after its delays: what the alarm stands for
    value: float | None = None
    condition_since_s: float | None = None  # when the raw condition last changed
    raised_at: datetime | None = None
    acknowledged_by: str | None = None
    shelved_by: str | None = None
    shelve_reason: str = ""
    shelved_until_s: float | None = None
    shelved_until: datetime | None = None
    hidden_by: list[AlarmState] = field(default_factory=list)  # shelve / suppress / out of service

    @property
    def alarm_id(self) -> str:
        return self.definition.alarm_id

    @property
    def annunciated(self) -> bool:
        """Shown to the operator as active: raised, whether acknowledged or not."""
        return self.state in (AlarmState.UNACKNOWLEDGED, AlarmState.ACKNOWLEDGED)


def _wall_now() -> datetime:
    return datetime.now(UTC)


class AlarmEngine:
    """Every alarm of the line, whatever its source.

    ``journal`` receives each transition as it happens (a store writes them: ``drain`` is the
    alternative for callers that batch). Flood: more than ``flood_alarms`` raised within
    ``flood_window_s`` (ISA-18.2's 10 per 10 minutes per operator) counts one flood.
    """

    def __init__(
        self,
        definitions: Iterable[AlarmDefinition] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _wall_now,
        journal: Callable[[Transition], None] | None = None,
        flood_alarms: int = 10,
        flood_window_s: float = 600.0,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._journal = journal
        self._alarms: dict[str, AlarmStatus] = {}
        self._pending: list[Transition] = []
        self.flood_alarms = flood_alarms
        self.flood_window_s = flood_window_s
        self._raised_times: deque[float] = deque()
        self.raised_total = 0
        self.floods_total = 0
        self.in_flood = False
        for definition in definitions:
            self.define(definition)

    # -- definitions -----------------------------------------------------------------------

    def define(self, definition: AlarmDefinition) -> None:
        """Add an alarm, or replace its definition (keeping its state)."""
        current = self._alarms.get(definition.alarm_id)
        if current is None:
            self._alarms[definition.alarm_id] = AlarmStatus(definition)
        else:
            current.definition = definition

    def status(self, alarm_id: str) -> AlarmStatus:
        try:
            return self._alarms[alarm_id]
        except KeyError:
            raise UnknownAlarm(alarm_id) from None

    def alarms(self) -> list[AlarmStatus]:
        """Every alarm, by id."""
        return [self._alarms[k] for k in sorted(self._alarms)]

    def state(self, alarm_id: str) -> AlarmState:
        return self.status(alarm_id).state

    # -- conditions from sources ------------------------------------------------------------

    def report_value(self, alarm_id: str, value: float) -> None:
        """A new value for a high or low alarm; the engine applies setpoint and deadband."""
        a = self.status(alarm_id)
        d = a.definition
        assert d.setpoint is not None
        if d.direction == "high":
            condition = value > d.setpoint if not a.condition else value >= d.setpoint - d.deadband
        elif d.direction == "low":
            condition = value < d.setpoint if not a.condition else value <= d.setpoint + d.deadband
        else:
            raise AlarmError(f"{alarm_id}: a state alarm takes report(), not report_value()")
        self._set_condition(a, condition, value)

    def report(self, alarm_id: str, active: bool, value: float | None = None) -> None:
        """The source's own verdict: the condition is active or not (e.g. a drift detector's
        raised/cleared, a stale sensor, a door contact), with the value it saw."""
        self._set_condition(self.status(alarm_id), active, value)

    def _set_condition(self, a: AlarmStatus, condition: bool, value: float | None) -> None:
        now = self._clock()
        a.value = value
        if condition != a.condition or a.condition_since_s is None:
            a.condition = condition
            a.condition_since_s = now
        self._settle(a, now)

    def tick(self) -> None:
        """Apply delays and expiries that fell due without a new report (call often, e.g. 1 s)."""
        now = self._clock()
        for a in self._alarms.values():
            self._settle(a, now)

    def _settle(self, a: AlarmStatus, now: float) -> None:
        d = a.definition
        if a.shelved_until_s is not None and now >= a.shelved_until_s:
            self._unhide(a, AlarmState.SHELVED, "shelf_expired", None)
        if a.condition_since_s is not None:
            held_s = now - a.condition_since_s
            if a.condition and not a.active and held_s >= d.on_delay_s:
                a.active = True
                self._raise(a)
            elif not a.condition and a.active and held_s >= d.off_delay_s:
                a.active = False
                self._clear(a)

    def _raise(self, a: AlarmStatus) -> None:
        if a.hidden_by:
            return  # tracked, not annunciated; it shows when it comes back
        if a.state in (AlarmState.NORMAL, AlarmState.RETURNED_UNACKNOWLEDGED):
            a.raised_at = self._wall_clock()
            a.acknowledged_by = None
            self._move(a, AlarmState.UNACKNOWLEDGED, "raised")
            self._count_raised()

    def _clear(self, a: AlarmStatus) -> None:
        if a.hidden_by:
            return
        if a.state == AlarmState.UNACKNOWLEDGED:
            self._move(a, AlarmState.RETURNED_UNACKNOWLEDGED, "cleared")
        elif a.state == AlarmState.ACKNOWLEDGED:
            self._move(a, AlarmState.NORMAL, "cleared")

    def _count_raised(self) -> None:
        now = self._clock()
        self.raised_total += 1
        times = self._raised_times
        times.append(now)
        while times and now - times[0] > self.flood_window_s:
            times.popleft()
        flood = len(times) > self.flood_alarms
        if flood and not self.in_flood:
            self.floods_total += 1
        self.in_flood = flood

    def flood_rate(self) -> int:
        """Alarms raised within the last flood window."""
        now = self._clock()
        while self._raised_times and now - self._raised_times[0] > self.flood_window_s:
            self._raised_times.popleft()
        self.in_flood = len(self._raised_times) > self.flood_alarms
        return len(self._raised_times)

    # -- operator commands -----------------------------------------------------------------

    def acknowledge(self, alarm_id: str, user: str) -> Transition:
        a = self.status(alarm_id)
        if a.state == AlarmState.UNACKNOWLEDGED:
            a.acknowledged_by = user
            return self._move(a, AlarmState.ACKNOWLEDGED, "acknowledged", user=user)
        if a.state == AlarmState.RETURNED_UNACKNOWLEDGED:
            a.acknowledged_by = user
            return self._move(a, AlarmState.NORMAL, "acknowledged", user=user)
        raise AlarmError(f"{alarm_id} is {a.state}: nothing to acknowledge")

    def shelve(self, alarm_id: str, user: str, reason: str, duration_s: float) -> Transition:
        """Hide an alarm for ``duration_s`` at most, with a reason (ISA-18.2 shelving)."""
        if not reason.strip():
            raise AlarmError("shelving needs a reason")
        if duration_s <= 0:
            raise AlarmError("shelving needs a positive duration")
        a = self.status(alarm_id)
        if AlarmState.OUT_OF_SERVICE in a.hidden_by:
            raise AlarmError(f"{alarm_id} is out of service")
        now = self._clock()
        a.shelved_by, a.shelve_reason = user, reason
        a.shelved_until_s = now + duration_s
        a.shelved_until = datetime.fromtimestamp(self._wall_clock().timestamp() + duration_s, UTC)
        return self._hide(a, AlarmState.SHELVED, "shelved", user, reason)

    def unshelve(self, alarm_id: str, user: str) -> Transition:
        a = self.status(alarm_id)
        if AlarmState.SHELVED not in a.hidden_by:
            raise AlarmError(f"{alarm_id} is not shelved")
        return self._unhide(a, AlarmState.SHELVED, "unshelved", user)

    def suppress(self, alarm_id: str, suppressed: bool, reason: str = "") -> Transition | None:
        """Suppression by design: the source's own logic says the alarm means nothing now
        (a door held open while a room is being loaded). Idempotent."""
        a = self.status(alarm_id)
        if suppressed and AlarmState.SUPPRESSED not in a.hidden_by:
            return self._hide(a, AlarmState.SUPPRESSED, "suppressed", None, reason)
        if not suppressed and AlarmState.SUPPRESSED in a.hidden_by:
            return self._unhide(a, AlarmState.SUPPRESSED, "unsuppressed", None, reason)
        return None

    def set_out_of_service(self, alarm_id: str, out: bool, user: str, reason: str = "") -> Transition:
        a = self.status(alarm_id)
        if out:
            if AlarmState.OUT_OF_SERVICE in a.hidden_by:
                raise AlarmError(f"{alarm_id} is already out of service")
            return self._hide(a, AlarmState.OUT_OF_SERVICE, "out_of_service", user, reason)
        if AlarmState.OUT_OF_SERVICE not in a.hidden_by:
            raise AlarmError(f"{alarm_id} is not out of service")
        return self._unhide(a, AlarmState.OUT_OF_SERVICE, "returned_to_service", user, reason)

    # The state shown is the strongest hiding reason: out of service > suppressed > shelved.
    _HIDE_ORDER = (AlarmState.OUT_OF_SERVICE, AlarmState.SUPPRESSED, AlarmState.SHELVED)

    def _hidden_state(self, a: AlarmStatus) -> AlarmState | None:
        return next((s for s in self._HIDE_ORDER if s in a.hidden_by), None)

    def _hide(self, a: AlarmStatus, why: AlarmState, cause: str, user: str | None, reason: str) -> Transition:
        if why not in a.hidden_by:
            a.hidden_by.append(why)
        shown = self._hidden_state(a)
        assert shown is not None
        return self._move(a, shown, cause, user=user, reason=reason, force=True)

    def _unhide(self, a: AlarmStatus, why: AlarmState, cause: str, user: str | None, reason: str = "") -> Transition:
        if why in a.hidden_by:
            a.hidden_by.remove(why)
        if why == AlarmState.SHELVED:
            a.shelved_by, a.shelve_reason, a.shelved_until_s, a.shelved_until = None, "", None, None
        shown = self._hidden_state(a)
        if shown is None:
            # Back in view: the state the condition calls for now.
            if a.active:
                a.raised_at = self._wall_clock()
                a.acknowledged_by = None
                transition = self._move(a, AlarmState.UNACKNOWLEDGED, cause, user=user, reason=reason, force=True)
                self._count_raised()
                return transition
            return self._move(a, AlarmState.NORMAL, cause, user=user, reason=reason, force=True)
        return self._move(a, shown, cause, user=user, reason=reason, force=True)

    def _move(
        self, a: AlarmStatus, to: AlarmState, cause: str, *, user: str | None = None, reason: str = "",
        force: bool = False,
    ) -> Transition:
        transition = Transition(a.alarm_id, self._wall_clock(), a.state, to, cause, a.value, user, reason)
        if to == a.state and not force:
            return transition
        a.state = to
        if self._journal is not None:
            self._journal(transition)
        else:
            self._pending.append(transition)
        return transition

    def drain(self) -> list[Transition]:
        """Transitions since the last call, oldest first, when no ``journal`` was given (for a
        caller that writes them in batches)."""
        out, self._pending = self._pending, []
        return out

    def requeue(self, transitions: Iterable[Transition]) -> None:
        """Put back transitions a writer could not store, ahead of newer ones."""
        self._pending[:0] = list(transitions)

    def snapshot(self, alarm_id: str) -> AlarmStatus:
        """A copy of an alarm's status, safe to hand to another thread."""
        a = self.status(alarm_id)
        return replace(a, hidden_by=list(a.hidden_by))
