"""The line with real drivers against wire-level simulators, and devices killed mid-run.

Scales speak MT-SICS over TCP to ``simulators.scale_server``; cold-room sensors speak Modbus TCP
to ``simulators.coldroom``. Camera and PLC are simulated in-process. A scale switched off mid-run
must send its lane's fruit to recheck (never graded blind) while the line keeps grading, and its
weights must come back by themselves when it returns.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from api.compose import open_line
from api.config import parse_config
from grading.access import Role
from grading.schema import fruit
from simulators.coldroom import ColdroomModel, ColdroomServer, demo_settings
from simulators.scale_server import ScaleSimulator, SettableWeight

pytestmark = pytest.mark.slow


def test_scale_killed_mid_run_sends_its_lane_to_recheck_and_recovers(tmp_path: Path, until) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        sims = [ScaleSimulator("mt-sics", SettableWeight(w)) for w in (181.0, 222.0)]
        urls = [await s.start_tcp() for s in sims]
        rooms = ColdroomServer(ColdroomModel(demo_settings(rooms=2), clock=time.monotonic))
        coldroom_port = await rooms.start_tcp()
        config = parse_config(
            {
                "line": {"lanes": 2, "cups_per_second": 5.0},
                "camera": {"geometry": {"height_px": 320, "fps": 10.0}},
                "scale": {"kind": "mt-sics", "ports": urls, "timeout_s": 0.2},
                "sensors": [
                    {
                        "name": f"room-{i}",
                        "transport": {"kind": "tcp", "host": "127.0.0.1", "port": coldroom_port},
                        "device_id": i,
                        "profile": "xy-md02",
                        "poll_interval_s": 0.2,
                    }
                    for i in (1, 2)
                ],
                "database": {"url": f"sqlite:///{tmp_path}/line.db"},
            }
        )
        try:
            async with open_line(config) as handle:
                runtime = handle.runtime

                def lane_rows(lane: int, after_id: int = 0) -> list[dict]:  # type: ignore[type-arg]
                    handle.writer.flush(10)
                    with handle.engine.connect() as conn:
                        query = select(fruit).where(fruit.c.lane == lane, fruit.c.id > after_id)
                        return [dict(r) for r in conn.execute(query).mappings()]

                # Both lanes weigh (the first cups had passed the load cells before intake began);
                # the weights are the indicators' own.
                def weighed(lane: int) -> list[float]:
                    return [r["weight_g"] for r in lane_rows(lane) if r["weight_g"] is not None]

                await until(lambda: len(weighed(0)) >= 3 and len(weighed(1)) >= 3, 60, "weighed fruit")
                assert all(abs(w - 181.0) < 0.01 for w in weighed(0))
                assert all(abs(w - 222.0) < 0.01 for w in weighed(1))

                # Cold rooms are polled over Modbus and exported.
                await until(lambda: all(h.last_reading for h in handle.sensors.health.values()), 20, "sensor readings")
                app = create_app(lambda: _already_open(handle))
                transport = httpx.ASGITransport(app=app)
                async with (
                    app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=transport, base_url="http://l") as client,
                ):
                    token, _ = app.state.auth.access.create_token("test", Role.integrator, "test")
                    bearer = {"Authorization": f"Bearer {token}"}
                    # both up: a poll that came late on a busy machine shows as stale until the next
                    for _attempt in range(50):
                        rooms_state = (await client.get("/api/v1/coldrooms/sensors", headers=bearer)).json()["items"]
                        if [s["state"] for s in rooms_state] == ["up", "up"]:
                            break
                        await asyncio.sleep(0.1)
                    metrics = (await client.get("/metrics")).text  # from loopback: no token needed
                assert [s["state"] for s in rooms_state] == ["up", "up"]
                assert 'gradeline_coldroom_temperature_celsius{room="room-1"}' in metrics
                assert rooms_state[0]["temperature_celsius"] == pytest.approx(2.0, abs=0.2)

                # Lane 0's indicator is switched off mid-run. Cups weighed before that keep their
                # weights; every cup reaching the dead load cell afterwards must go to recheck.
                await sims[0].stop()
                on_scale_at_kill = runtime.snapshot()["cup_counter"] - config.line.scale_offset_cups + 1
                lane1_before = runtime.counters.by_lane[1]
                await until(lambda: runtime.snapshot()["devices"]["lane-1"] == "fault", 10, "scale fault seen")

                def after(lane: int, cup: int) -> list[dict]:  # type: ignore[type-arg]
                    return [r for r in lane_rows(lane) if r["cup_index"] > cup]

                await until(lambda: len(after(0, on_scale_at_kill)) >= 5, 60, "lane 0 fruit weighed during the outage")
                during = after(0, on_scale_at_kill)
                assert all(r["weight_g"] is None and r["quality_class"] == "recheck" for r in during)
                assert {r["outlet"] for r in during} <= {0, 4}  # the recheck outlet, or recirculated if late
                assert runtime.counters.by_lane[1] > lane1_before, "the other lane stopped grading"

                # Back on the same port: weights return without anyone restarting the line.
                await sims[0].start_tcp(int(urls[0].rsplit(":", 1)[1]))
                back_cup = runtime.snapshot()["cup_counter"] - config.line.scale_offset_cups
                await until(
                    lambda: any(r["weight_g"] is not None for r in after(0, back_cup)), 60, "weights again"
                )
                first_back = min(r["cup_index"] for r in after(0, back_cup) if r["weight_g"] is not None)
                # Within 5 s of belt travel (5 cups/s) of the indicator's return.
                assert first_back - back_cup <= 25
        finally:
            for s in sims:
                await s.stop()
            await rooms.stop()

    asyncio.run(scenario())


def _already_open(handle):  # type: ignore[no-untyped-def]
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def cm():  # type: ignore[no-untyped-def]
        yield handle

    return cm()
