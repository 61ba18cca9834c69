"""Cold-room readings history, downsampled, and lots' residence in the rooms.

``MinuteAggregator`` folds every reading into one row per room, quantity and minute (min, max,
mean, samples, and for temperature the seconds outside the room's band: each reading holds until
the next one, at most ``hold_max_s``). ``ColdchainStore`` writes those rows, deletes rows past
the retention, answers a room's history and excursions, records lots' (or pallets') moves into
and out of rooms, and builds a lot's cold-chain history. Blocking: call the store off the
event loop. Minutes are UTC wall-clock minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from grading.schema import as_utc, coldroom_readings, lot_residence, lots


def minute_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(slots=True)
class MinuteRow:
    room: str
    quantity: str
    minute_at: datetime
    min_value: float
    max_value: float
    sum_value: float = 0.0
    samples: int = 0
    out_of_band_s: float = 0.0

    @property
    def mean_value(self) -> float:
        return self.sum_value / self.samples if self.samples else self.min_value

    def as_row(self) -> dict[str, Any]:
        return {
            "room": self.room, "quantity": self.quantity, "minute_at": self.minute_at, "min_value": self.min_value,
            "max_value": self.max_value, "mean_value": self.mean_value, "samples": self.samples,
            "out_of_band_s": round(self.out_of_band_s, 3),
        }


@dataclass(slots=True)
class _Series:
    current: MinuteRow | None = None
    last_at: datetime | None = None
    last_value: float = 0.0
    last_out: bool = False


@dataclass
class MinuteAggregator:
    """One row per (room, quantity, minute); finished minutes wait in ``ready`` for the store.

    A minute with no reading of its own, inside a reading's hold, gets a row with the held
    value and ``samples`` 0, so out-of-band time is never lost between sparse readings."""

    hold_max_s: float = 300.0
    ready: list[MinuteRow] = field(default_factory=list)
    _series: dict[tuple[str, str], _Series] = field(default_factory=dict)

    def add(self, room: str, quantity: str, at: datetime, value: float, out_of_band: bool = False) -> None:
        series = self._series.setdefault((room, quantity), _Series())
        if series.last_at is not None and at > series.last_at:
            # The previous reading held until now (capped); its out-of-band time, minute by minute.
            self._hold(series, room, quantity, series.last_at, min(at, series.last_at + timedelta(seconds=self.hold_max_s)))
        row = self._row(series, room, quantity, minute_of(at))
        row.min_value = min(row.min_value, value) if row.samples else value
        row.max_value = max(row.max_value, value) if row.samples else value
        row.sum_value += value
        row.samples += 1
        series.last_at, series.last_value, series.last_out = at, value, out_of_band

    def _row(self, series: _Series, room: str, quantity: str, minute: datetime) -> MinuteRow:
        if series.current is not None and series.current.minute_at != minute:
            self.ready.append(series.current)
            series.current = None
        if series.current is None:
            series.current = MinuteRow(room, quantity, minute, series.last_value, series.last_value)
        return series.current

    def _hold(self, series: _Series, room: str, quantity: str, start: datetime, end: datetime) -> None:
        t = start
        while t < end:
            minute = minute_of(t)
            stop = min(end, minute + timedelta(minutes=1))
            row = self._row(series, room, quantity, minute)
            if series.last_out:
                row.out_of_band_s += (stop - t).total_seconds()
            t = stop

    def flush(self, now: datetime, *, everything: bool = False) -> list[MinuteRow]:
        """Rows of finished minutes (every row with ``everything``), oldest first."""
        this_minute = minute_of(now)
        for series in self._series.values():
            row = series.current
            if row is not None and (everything or row.minute_at < this_minute):
                self.ready.append(row)
                series.current = None
        out, self.ready = self.ready, []
        return sorted(out, key=lambda r: (r.minute_at, r.room, r.quantity))


# -- queries' answers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stay:
    """A lot's (or a pallet's) time in one room, with the room's temperature over it."""

    residence_id: int
    room: str
    pallet: str
    entered_at: datetime
    left_at: datetime | None
    duration_s: float
    temperature_min_c: float | None
    temperature_max_c: float | None
    temperature_mean_c: float | None
    minutes_out_of_band: float



class ColdchainStore:
    def __init__(self, engine: Engine, wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._wall_clock = wall_clock

    # -- readings --------------------------------------------------------------------------

    def write(self, rows: Sequence[MinuteRow]) -> int:
        """Insert minute rows; a minute already stored (a replay) is kept, not doubled."""
        written = 0
        with self._engine.begin() as conn:
            for row in rows:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(coldroom_readings).values(**row.as_row()))
                    written += 1
                except IntegrityError:
                    continue
        return written

    def prune(self, retention_days: float) -> int:
        """Delete minute rows older than the retention; how many."""
        cutoff = self._wall_clock() - timedelta(days=retention_days)
        with self._engine.begin() as conn:
            return int(conn.execute(delete(coldroom_readings).where(coldroom_readings.c.minute_at < cutoff)).rowcount)

    def history(self, room: str, since: datetime, until: datetime, quantity: str = "temperature") -> list[dict[str, Any]]:
        query = (
            select(coldroom_readings)
            .where(coldroom_readings.c.room == room, coldroom_readings.c.quantity == quantity,
                   coldroom_readings.c.minute_at >= minute_of(since), coldroom_readings.c.minute_at < until)
            .order_by(coldroom_readings.c.minute_at)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {"minute_at": as_utc(r["minute_at"]), "min": r["min_value"], "max": r["max_value"], "mean": r["mean_value"],
             "samples": r["samples"], "out_of_band_s": r["out_of_band_s"]}
            for r in rows
        ]

    def excursions(self, room: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Runs of consecutive minutes with time out of band: start, end, minutes out, extreme values."""
        runs: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        for row in self.history(room, since, until):
            if row["out_of_band_s"] <= 0:
                current = None
                continue
            end = row["minute_at"] + timedelta(minutes=1)
            if current is not None and current["end"] == row["minute_at"]:
                current["end"] = end
                current["minutes_out_of_band"] += row["out_of_band_s"] / 60
                current["max"] = max(current["max"], row["max"])
                current["min"] = min(current["min"], row["min"])
            else:
                current = {"start": row["minute_at"], "end": end, "minutes_out_of_band": row["out_of_band_s"] / 60,
                           "min": row["min"], "max": row["max"]}
                runs.append(current)
        for run in runs:
            run["minutes_out_of_band"] = round(run["minutes_out_of_band"], 2)
        return runs

    # -- residence -------------------------------------------------------------------------

    def move(self, lot_id: int, room: str | None, *, user: str, pallet: str = "") -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Move a lot (or one of its pallets) into ``room`` (None: out of the cold chain).
        Ends its current stay, if any, and starts the new one in one transaction; returns
        (the stay ended, the stay started). Raises LookupError for an unknown lot, ValueError
        for a move into the room it is already in."""
        now = self._wall_clock()
        with self._engine.begin() as conn:
            if conn.execute(select(lots.c.id).where(lots.c.id == lot_id)).first() is None:
                raise LookupError(f"no lot {lot_id}")
            open_stay = conn.execute(
                select(lot_residence).where(lot_residence.c.lot_id == lot_id, lot_residence.c.pallet == pallet,
                                            lot_residence.c.left_at.is_(None))
            ).mappings().first()
            if open_stay is not None and open_stay["room"] == room:
                raise ValueError(f"lot {lot_id}{' pallet ' + pallet if pallet else ''} is already in {room}")
            if open_stay is None and room is None:
                raise ValueError(f"lot {lot_id}{' pallet ' + pallet if pallet else ''} is in no room")
            ended = started = None
            if open_stay is not None:
                conn.execute(update(lot_residence).where(lot_residence.c.id == open_stay["id"]).values(left_at=now, left_by=user))
                ended = {**dict(open_stay), "left_at": now, "left_by": user}
            if room is not None:
                values = {"lot_id": lot_id, "pallet": pallet, "room": room, "entered_at": now, "entered_by": user}
                new_id = conn.execute(insert(lot_residence).values(**values)).inserted_primary_key[0]  # type: ignore[index]
                started = {"id": int(new_id), **values, "left_at": None, "left_by": None}
        return ended, started

    def residents(self, room: str) -> list[dict[str, Any]]:
        """Lots and pallets in a room now."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(lot_residence, lots.c.code).join(lots, lots.c.id == lot_residence.c.lot_id)
                .where(lot_residence.c.room == room, lot_residence.c.left_at.is_(None))
                .order_by(lot_residence.c.entered_at)
            ).mappings().all()
        return [{"residence_id": r["id"], "lot_id": r["lot_id"], "lot_code": r["code"], "pallet": r["pallet"],
                 "entered_at": as_utc(r["entered_at"])} for r in rows]

    def lot_exists(self, lot_id: int) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(lots.c.id).where(lots.c.id == lot_id)).first() is not None

    def lot_history(self, lot_id: int, now: datetime | None = None) -> list[Stay]:
        """Every stay of the lot (and its pallets), oldest first, with the room's temperature
        over it from the minute rows; a minute cut by a move counts for the part inside."""
        now = now or self._wall_clock()
        with self._engine.connect() as conn:
            stays = conn.execute(
                select(lot_residence).where(lot_residence.c.lot_id == lot_id).order_by(lot_residence.c.entered_at, lot_residence.c.id)
            ).mappings().all()
            out = []
            for s in stays:
                entered, left = as_utc(s["entered_at"]), as_utc(s["left_at"]) if s["left_at"] is not None else None
                end = left or now
                rows = conn.execute(
                    select(coldroom_readings).where(
                        coldroom_readings.c.room == s["room"], coldroom_readings.c.quantity == "temperature",
                        and_(coldroom_readings.c.minute_at >= minute_of(entered), coldroom_readings.c.minute_at < end),
                    )
                ).mappings().all()
                lo = hi = None
                weighted = weight = out_s = 0.0
                for r in rows:
                    start = as_utc(r["minute_at"])
                    overlap = (min(end, start + timedelta(minutes=1)) - max(entered, start)).total_seconds() / 60
                    if overlap <= 0:
                        continue
                    lo = r["min_value"] if lo is None else min(lo, r["min_value"])
                    hi = r["max_value"] if hi is None else max(hi, r["max_value"])
                    weighted += r["mean_value"] * overlap
                    weight += overlap
                    out_s += r["out_of_band_s"] * overlap
                out.append(Stay(
                    residence_id=int(s["id"]), room=s["room"], pallet=s["pallet"], entered_at=entered, left_at=left,
                    duration_s=(end - entered).total_seconds(), temperature_min_c=lo, temperature_max_c=hi,
                    temperature_mean_c=weighted / weight if weight else None, minutes_out_of_band=out_s / 60,
                ))
        return out

