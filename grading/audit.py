"""The audit log: who did what, when, from where, and for changes the value before and after.

Append-only: this module only inserts and reads, and the database refuses UPDATE and DELETE on
the table (triggers from migration 0003_auth). Entries are read newest first, a page at a time
(``before_id`` is the paging cursor). Blocking: call it off the event loop. Time comes from an
injected wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from grading.schema import audit_log

ACTOR_KINDS = ("user", "token", "public", "cli")
OUTCOMES = ("ok", "refused")


@dataclass(frozen=True)
class Actor:
    """Who acted: an HMI user, an API token, an anonymous caller or the command line."""

    kind: str
    name: str
    role: str | None
    client_address: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_kind: str
    actor: str
    role: str | None
    action: str
    target: str | None
    outcome: str
    client_address: str
    before: Any
    after: Any
    detail: str


class AuditLog:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._clock = clock

    def record(
        self,
        actor: Actor,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "ok",
        before: Any = None,
        after: Any = None,
        detail: str = "",
    ) -> AuditEntry:
        if actor.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind {actor.kind!r} is not one of {ACTOR_KINDS}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
        values = {
            "at": self._clock(), "actor_kind": actor.kind, "actor": actor.name[:100], "role": actor.role,
            "action": action, "target": target[:200] if target is not None else None, "outcome": outcome,
            "client_address": actor.client_address[:64], "before": before, "after": after, "detail": detail,
        }
        with self._engine.begin() as conn:
            entry_id = conn.execute(insert(audit_log).values(**values)).inserted_primary_key[0]  # type: ignore[index]
        return AuditEntry(id=int(entry_id), **values)

    def page(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        """Up to ``limit`` entries, newest first, older than ``before_id`` when given."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(
                id=int(r["id"]), at=r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=UTC),
                actor_kind=r["actor_kind"], actor=r["actor"], role=r["role"], action=r["action"],
                target=r["target"], outcome=r["outcome"], client_address=r["client_address"],
                before=r["before"], after=r["after"], detail=r["detail"],
            )
            for r in rows
        ]
