"""The alarm journal in the store, on both backends: the service writes every transition,
acknowledgements with their user, and reads them back newest first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from grading.alarm_journal import journal_page
from grading.alarms import AlarmDefinition, AlarmEngine
from grading.coldchain.history import ColdchainStore
from grading.coldchain.service import ColdchainService
from grading.store import create_store_engine, migrate


def test_every_transition_is_journaled(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    t = [0.0]
    wall = lambda: datetime(2026, 12, 2, tzinfo=UTC) + timedelta(seconds=t[0])  # noqa: E731
    alarms = AlarmEngine([AlarmDefinition("line-1.drift.weight", "drift", "line-1", "medium")], clock=lambda: t[0], wall_clock=wall)
    service = ColdchainService(engine, alarms, None, ColdchainStore(engine, wall), retention_days=1, clock=lambda: t[0])

    async def run() -> None:
        alarms.report("line-1.drift.weight", True, 3.2)
        t[0] = 5
        alarms.acknowledge("line-1.drift.weight", "张三")
        await service.flush()
        t[0] = 9
        alarms.report("line-1.drift.weight", False, 0.4)
        await service.close()

    asyncio.run(run())
    rows = journal_page(engine, 10)
    assert [(r["from_state"], r["to_state"], r["cause"], r["user_name"], r["value"]) for r in rows] == [
        ("acknowledged", "normal", "cleared", None, 0.4),
        ("unacknowledged", "acknowledged", "acknowledged", "张三", 3.2),
        ("normal", "unacknowledged", "raised", None, 3.2),
    ]
    assert rows[1]["at"] == datetime(2026, 12, 2, 0, 0, 5, tzinfo=UTC)
    assert journal_page(engine, 10, before_id=rows[1]["id"]) == rows[2:]
    engine.dispose()
