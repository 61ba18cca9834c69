"""The route audit: every route the app serves, walked from the app itself, honours its declared audience.

Without a credential each non-public route answers 401; with a valid token one role below its
declaration, 403; with a token of its own role, neither. A route added without a declaration,
or a mutating one without an audit trail, stops the app from starting.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import APIRouter
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient, WebSocketDenialResponse

from api.app import create_app
from api.auth import Audit, OperatorCaller, PublicCaller, RouteWithoutAudience, route_audiences
from grading.access import Role
from tests.unit.api.conftest import Api, line_factory

# Every route the app serves today, with its declared audience: a new route must be added here
# on purpose, so that a reviewer sees who may call it.
EXPECTED = {
    ("GET", "/api/v1/health"): Role.public,
    ("GET", "/api/v1/line"): Role.integrator,
    ("POST", "/api/v1/line/start"): Role.operator,
    ("POST", "/api/v1/line/stop"): Role.operator,
    ("GET", "/api/v1/coldrooms"): Role.integrator,
    ("GET", "/api/v1/coldrooms/sensors"): Role.integrator,
    ("GET", "/api/v1/coldrooms/{room}/history"): Role.integrator,
    ("GET", "/api/v1/coldrooms/{room}/excursions"): Role.integrator,
    ("POST", "/api/v1/coldrooms/{room}/loading"): Role.operator,
    ("POST", "/api/v1/coldrooms/{room}/precooling"): Role.operator,
    ("GET", "/api/v1/alarms"): Role.integrator,
    ("GET", "/api/v1/alarms/journal"): Role.integrator,
    ("POST", "/api/v1/alarms/{alarm_id}/acknowledge"): Role.operator,
    ("POST", "/api/v1/alarms/{alarm_id}/shelve"): Role.supervisor,
    ("POST", "/api/v1/alarms/{alarm_id}/unshelve"): Role.supervisor,
    ("POST", "/api/v1/alarms/{alarm_id}/service"): Role.supervisor,
    ("GET", "/api/v1/lots/{lot_id}/coldchain"): Role.integrator,
    ("GET", "/api/v1/lots/{lot_id}/trace"): Role.integrator,
    ("POST", "/api/v1/lots/{lot_id}/coldchain/moves"): Role.operator,
    ("GET", "/api/v1/epcis/events"): Role.integrator,
    ("POST", "/api/v1/lots"): Role.operator,
    ("GET", "/api/v1/lots"): Role.integrator,
    ("GET", "/api/v1/lots/current"): Role.integrator,
    ("GET", "/api/v1/lots/{lot_id}"): Role.integrator,
    ("POST", "/api/v1/lots/{lot_id}/close"): Role.operator,
    ("GET", "/api/v1/lots/{lot_id}/packout"): Role.integrator,
    ("GET", "/api/v1/lots/{lot_id}/packout/page"): Role.integrator,
    ("GET", "/api/v1/lots/{lot_id}/settlement"): Role.supervisor,
    ("GET", "/api/v1/lots/{lot_id}/settlement/page"): Role.supervisor,
    ("POST", "/api/v1/lots/{lot_id}/whatif"): Role.supervisor,
    ("PUT", "/api/v1/lots/{lot_id}/platform-trace-code"): Role.supervisor,
    ("GET", "/api/v1/lots/{lot_id}/certificates"): Role.integrator,
    ("POST", "/api/v1/lots/{lot_id}/certificates"): Role.operator,
    ("GET", "/api/v1/exports/{kind}"): Role.integrator,
    ("GET", "/api/v1/recipes"): Role.supervisor,
    ("GET", "/api/v1/recipes/{digest}"): Role.supervisor,
    ("POST", "/api/v1/recipes"): Role.supervisor,
    ("POST", "/api/v1/recipes/validate"): Role.supervisor,
    ("POST", "/api/v1/recipes/{digest}/activate"): Role.supervisor,
    ("GET", "/api/v1/outlets"): Role.integrator,
    ("POST", "/api/v1/outlets/{number}/full"): Role.operator,
    ("POST", "/api/v1/outlets/{number}/carton/close"): Role.operator,
    ("GET", "/api/v1/cartons"): Role.integrator,
    ("GET", "/api/v1/cartons/{carton_id}"): Role.integrator,
    ("GET", "/api/v1/cartons/{carton_id}/label"): Role.integrator,
    ("POST", "/api/v1/cartons/{carton_id}/label/print"): Role.operator,
    ("POST", "/api/v1/pallets"): Role.operator,
    ("GET", "/api/v1/pallets"): Role.integrator,
    ("GET", "/api/v1/pallets/loose-cartons"): Role.integrator,
    ("GET", "/api/v1/pallets/{pallet_id}"): Role.integrator,
    ("POST", "/api/v1/pallets/{pallet_id}/cartons"): Role.operator,
    ("DELETE", "/api/v1/pallets/{pallet_id}/cartons/{carton_id}"): Role.operator,
    ("POST", "/api/v1/pallets/{pallet_id}/ship"): Role.operator,
    ("GET", "/api/v1/pallets/{pallet_id}/label"): Role.integrator,
    ("POST", "/api/v1/pallets/{pallet_id}/label/print"): Role.operator,
    ("POST", "/api/v1/auth/login"): Role.public,
    ("GET", "/api/v1/auth/session"): Role.integrator,
    ("POST", "/api/v1/auth/logout"): Role.integrator,
    ("GET", "/api/v1/users"): Role.admin,
    ("POST", "/api/v1/users/{name}/unlock"): Role.admin,
    ("GET", "/api/v1/audit"): Role.supervisor,
    ("WEBSOCKET", "/api/v1/live"): Role.integrator,
    ("GET", "/metrics"): Role.integrator,
    ("GET", "/"): Role.public,
    ("GET", "/assets/{name}"): Role.public,
    ("GET", "/openapi.json"): Role.public,
    ("GET", "/docs"): Role.public,
    ("GET", "/01/{rest}"): Role.public,  # the GS1 Digital Link resolver: consumers scan it
}


def _url(path: str) -> str:
    path = path.replace("{digest}", "0" * 64)  # a recipe version's path takes only a SHA-256
    return re.sub(r"\{[^}]+\}", "nobody", path)


def _status(api: Api, method: str, path: str, headers: dict[str, str]) -> int:
    if method == "WEBSOCKET":
        try:
            with api.client.websocket_connect(_url(path), headers=headers) as ws:
                ws.receive_text()
                return 101
        except WebSocketDenialResponse as denied:
            return denied.status_code
    response = api.client.request(method, _url(path), headers=headers)
    if response.status_code in (401, 403):
        assert response.headers["content-type"] == "application/problem+json", (method, path)
        assert response.json()["status"] == response.status_code
    return response.status_code


def test_every_route_declares_the_audience_we_expect(api: Api) -> None:
    served = {(method, a.path): a.least for a in route_audiences(api.app) for method in a.methods}
    assert served == EXPECTED


def test_every_route_refuses_callers_below_its_audience(api: Api) -> None:
    checked = 0
    for audience in route_audiences(api.app):
        for method in sorted(audience.methods):
            where = f"{method} {audience.path}"
            if audience.least is Role.public:
                assert _status(api, method, audience.path, {}) not in (401, 403), where
                continue
            assert _status(api, method, audience.path, {}) == 401, where
            assert _status(api, method, audience.path, {"Authorization": "Bearer glt_not-a-token"}) == 401, where
            below = audience.least.below()
            if below is not None and below is not Role.public:
                assert _status(api, method, audience.path, api.bearer(below)) == 403, where
            assert _status(api, method, audience.path, api.bearer(audience.least)) not in (401, 403), where
            checked += 1
    assert checked == sum(1 for role in EXPECTED.values() if role is not Role.public)


def test_a_revoked_token_is_refused(api: Api) -> None:
    secret, _ = api.access.create_token("short-lived", Role.supervisor, "test")
    assert api.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    api.access.revoke_token("short-lived")
    api.app.state.auth.cache.clear()  # the credential cache would otherwise trust it for auth.credential_cache_s
    assert api.client.get("/api/v1/audit", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_route_without_a_declaration_stops_start_up(tmp_path: Path) -> None:
    app = create_app(line_factory(tmp_path))
    forgotten = APIRouter()

    @forgotten.get("/api/v1/forgotten")
    async def undeclared() -> dict[str, str]:
        return {}

    app.include_router(forgotten)
    with pytest.raises(RouteWithoutAudience, match="GET /api/v1/forgotten: declares 0 audiences"), TestClient(app):
        pass


def test_a_mutating_route_without_an_audit_trail_stops_start_up(tmp_path: Path) -> None:
    app = create_app(line_factory(tmp_path))
    sneaky = APIRouter()

    @sneaky.post("/api/v1/recipe")
    async def change_recipe(who: OperatorCaller) -> dict[str, str]:
        return {}

    app.include_router(sneaky)
    with pytest.raises(RouteWithoutAudience, match="POST /api/v1/recipe: changes something, so it must take Audit"):
        route_audiences(app)


def test_a_plain_starlette_route_cannot_be_declared_so_it_is_refused(tmp_path: Path) -> None:
    app = create_app(line_factory(tmp_path))
    app.add_route("/raw", lambda request: PlainTextResponse("x"))
    with pytest.raises(RouteWithoutAudience, match="/raw: not a FastAPI route"):
        route_audiences(app)


def test_a_declared_route_added_later_is_accepted(tmp_path: Path) -> None:
    app = create_app(line_factory(tmp_path))
    fine = APIRouter()

    @fine.post("/api/v1/lots")
    async def open_lot(who: OperatorCaller, audit: Audit) -> dict[str, str]:
        return {}

    @fine.get("/api/v1/lots/public")
    async def lots(_: PublicCaller) -> dict[str, str]:
        return {}

    app.include_router(fine)
    assert {("POST", "/api/v1/lots"), ("GET", "/api/v1/lots/public")} <= {
        (m, a.path) for a in route_audiences(app) for m in a.methods
    }
