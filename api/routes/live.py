"""``/api/v1/live``: the live feed as a WebSocket (line snapshots, cold rooms, events).

Each message is one JSON object ``{"seq", "at", "type", "data"}``; see ``api.live`` and
docs/api.md. On connect the latest state messages arrive first, so a client that reconnects is
current at once. The credential is checked again every ``hub.recheck_s`` (10 s): a revoked
token or an ended login closes the socket with 4401.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from api.auth import IntegratorCaller, auth_state
from api.live import HubClosed, LiveHub, SubscriberOverflow
from api.problems import Unavailable

router = APIRouter(prefix="/api/v1", tags=["live"])

CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN = 1013  # fell behind: reconnect for a fresh snapshot
CLOSE_LOGGED_OUT = 4401


def _hub(websocket: WebSocket) -> LiveHub:
    hub: LiveHub | None = getattr(websocket.app.state, "live", None)
    if hub is None:
        raise Unavailable("the line is starting or shutting down")
    return hub


@router.websocket("/live")
async def live(websocket: WebSocket, who: IntegratorCaller) -> None:
    hub = _hub(websocket)
    state = auth_state(websocket)
    await websocket.accept()
    subscription = hub.subscribe()

    async def wait_for_close() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # the feed is one-way; anything the client sends is ignored

    closer = asyncio.create_task(wait_for_close(), name="live-receive")
    code = CLOSE_GOING_AWAY
    try:
        loop = asyncio.get_running_loop()
        recheck_at = loop.time() + hub.recheck_s
        while not closer.done():
            nxt = asyncio.ensure_future(subscription.next())
            done, _ = await asyncio.wait({nxt, closer}, timeout=max(0.0, recheck_at - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if nxt in done:
                await websocket.send_text(nxt.result())
            else:
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, SubscriberOverflow, HubClosed):
                    await nxt
            if loop.time() >= recheck_at:
                if not await state.still_valid(who):
                    code = CLOSE_LOGGED_OUT
                    break
                recheck_at = loop.time() + hub.recheck_s
    except SubscriberOverflow:
        code = CLOSE_TRY_AGAIN
    except HubClosed:
        code = CLOSE_GOING_AWAY
    except WebSocketDisconnect:
        return
    finally:
        subscription.close()
        closer.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await closer
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code)
