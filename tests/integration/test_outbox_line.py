"""The composed line with ``[database] outbox``: it writes its local SQLite outbox, forwards to
the central PostgreSQL database, stamps its line id, and shows its backlog on the status and
/metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Connection, func, select

from api.compose import open_line
from api.config import parse_config
from grading.schema import cartons, fruit
from grading.store import create_store_engine


@pytest.mark.postgres
def test_a_line_with_an_outbox_forwards_to_the_central_database(tmp_path: Path, postgres_url: str, until) -> None:  # type: ignore[no-untyped-def]
    outbox = tmp_path / "var" / "outbox.db"
    config = parse_config(
        {
            "line": {"name": "Line 7", "lanes": 2, "cups_per_second": 6.0},
            "camera": {"geometry": {"height_px": 160, "width_px": 320, "mm_per_px": 1.6, "fps": 12.0}},
            "database": {"url": postgres_url, "outbox": str(outbox)},
            "simulation": {"seed": 3},
        }
    )
    assert config.line.id == "line-7" and config.line.number == 7

    async def scenario():  # type: ignore[no-untyped-def]
        async with open_line(config) as handle:
            assert handle.forwarder is not None and str(handle.engine.url).endswith("outbox.db")
            await until(lambda: handle.runtime.counters.fruit_total >= 20, 90, "20 graded fruit")
            await handle.runtime.stop_intake()
            assert handle.writer.flush(30)
            await until(lambda: handle.forwarder.depth() == 0, 30, "the outbox to drain")
            await until(lambda: handle.runtime.snapshot()["outbox"]["forwarded_total"] > 0, 10, "the status")
            snapshot = handle.runtime.snapshot()
            metrics = generate_latest(handle.registry).decode()
            with handle.engine.connect() as conn:
                local = list(conn.execute(select(fruit.c.uid).order_by(fruit.c.id)).scalars())
                local_cartons = _carton_fills(conn)
            return snapshot, metrics, local, local_cartons

    snapshot, metrics, local, local_cartons = asyncio.run(scenario())
    assert snapshot["outbox"]["state"] == "up" and snapshot["outbox"]["oldest_age_s"] >= 0
    assert 'gradeline_outbox_depth{line="Line 7"}' in metrics
    assert "gradeline_outbox_oldest_age_seconds" in metrics and "gradeline_central_database_up" in metrics
    central = create_store_engine(postgres_url)
    try:
        with central.connect() as conn:
            rows = list(conn.execute(select(fruit.c.uid, fruit.c.line_id).order_by(fruit.c.id)))
            central_cartons = _carton_fills(conn)
    finally:
        central.dispose()
    assert [uid for uid, _ in rows] == local and len(local) >= 20  # intake had stopped: nothing after
    assert {line_id for _, line_id in rows} == {"line-7"}
    # cartons travel by their uid, and each fruit's carton with it (ids differ between databases)
    assert central_cartons == local_cartons and local_cartons


def _carton_fills(conn: Connection) -> dict[str, int]:
    """Each carton's uid and how many fruit rows name it."""
    query = (
        select(cartons.c.uid, func.count(fruit.c.id))
        .outerjoin(fruit, fruit.c.carton_id == cartons.c.id)
        .group_by(cartons.c.uid)
    )
    return {uid: n for uid, n in conn.execute(query)}
