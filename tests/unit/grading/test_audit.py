"""The audit log: entries read back newest first a page at a time, and the database refuses edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from grading.audit import Actor, AuditLog
from grading.schema import audit_log
from grading.store import create_store_engine, migrate


def test_entries_page_newest_first_with_before_and_after(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    t0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    ticks = iter(range(100))
    log = AuditLog(engine, clock=lambda: t0 + timedelta(seconds=next(ticks)))
    actor = Actor("token", "mes-bridge", "supervisor", "10.0.0.20")
    for i in range(5):
        log.record(actor, "line.stop", before={"state": "running"}, after={"state": "stopped"}, detail=str(i))
    first = log.page(2)
    assert [e.detail for e in first] == ["4", "3"]
    second = log.page(2, before_id=first[-1].id)
    assert [e.detail for e in second] == ["2", "1"]
    assert [e.detail for e in log.page(2, before_id=second[-1].id)] == ["0"]
    entry = first[0]
    assert (entry.actor_kind, entry.actor, entry.role, entry.client_address) == ("token", "mes-bridge", "supervisor", "10.0.0.20")
    assert entry.before == {"state": "running"} and entry.after == {"state": "stopped"}
    assert entry.at == t0 + timedelta(seconds=4)
    engine.dispose()


def test_the_database_refuses_to_change_or_delete_entries(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    log = AuditLog(engine)
    log.record(Actor("cli", "root", None, "local"), "user.add", target="张三")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(update(audit_log).values(actor="someone else"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(delete(audit_log))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
    assert [e.actor for e in log.page(10)] == ["root"]
    engine.dispose()


def test_unknown_actor_kinds_and_outcomes_are_refused(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    log = AuditLog(engine)
    with pytest.raises(ValueError):
        log.record(Actor("robot", "x", None, "local"), "line.stop")
    with pytest.raises(ValueError):
        log.record(Actor("cli", "x", None, "local"), "line.stop", outcome="maybe")
    engine.dispose()
