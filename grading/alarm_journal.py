"""The alarm journal in the store: every transition of every alarm, whatever its source.

Blocking: call it off the event loop. Read newest first, a page at a time (``before_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import Engine, insert, select

from grading.alarms import Transition
from grading.schema import alarm_journal


def write_transitions(engine: Engine, transitions: Sequence[Transition]) -> None:
    if not transitions:
        return
    rows = [
        {"at": t.at, "alarm_id": t.alarm_id[:160], "from_state": str(t.from_state), "to_state": str(t.to_state),
         "cause": t.cause, "value": t.value, "user_name": t.user, "reason": t.reason}
        for t in transitions
    ]
    with engine.begin() as conn:
        conn.execute(insert(alarm_journal), rows)


def journal_page(engine: Engine, limit: int, before_id: int | None = None, alarm_id: str | None = None) -> list[dict[str, Any]]:
    query = select(alarm_journal).order_by(alarm_journal.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(alarm_journal.c.id < before_id)
    if alarm_id is not None:
        query = query.where(alarm_journal.c.alarm_id == alarm_id)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {**dict(r), "at": r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=UTC)}
        for r in rows
    ]
