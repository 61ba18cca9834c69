"""The conventions later routes follow: problem+json for every error, cursor paging, and an
OpenAPI document where every response has a schema with an example."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from grading.access import Role
from grading.audit import Actor
from tests.unit.api.conftest import REMOTE_CLIENT, Api


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


def test_each_kind_of_error_is_problem_json(api: Api) -> None:
    admin = api.bearer(Role.admin)
    assert _problem(api.client.get("/api/v1/line"), 401)["type"] == "about:blank"
    assert api.client.get("/api/v1/line").headers["www-authenticate"].startswith("Bearer")
    _problem(api.client.get("/api/v1/audit", headers=api.bearer(Role.operator)), 403)
    assert _problem(api.client.get("/api/v1/nothing-here", headers=admin), 404)["instance"] == "/api/v1/nothing-here"
    not_allowed = api.client.delete("/api/v1/line", headers=admin)
    _problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET"
    invalid = _problem(api.client.get("/api/v1/audit", headers=admin, params={"limit": 0}), 422)
    assert invalid["type"] == "urn:gradeline:problem:validation"
    assert invalid["errors"] == [{"field": "query.limit", "message": "Input should be greater than or equal to 1"}]
    cursor = _problem(api.client.get("/api/v1/audit", headers=admin, params={"cursor": "!!"}), 422)
    assert [e["field"] for e in cursor["errors"]] == ["query.cursor"]
    api.app.state.line = None
    assert _problem(api.client.get("/api/v1/line", headers=admin), 503)["type"] == "urn:gradeline:problem:line-unavailable"


def test_an_unexpected_failure_is_a_500_problem(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(api.app.state.line.runtime, "snapshot", broken)
    client = TestClient(api.app, raise_server_exceptions=False, client=REMOTE_CLIENT)
    body = _problem(client.get("/api/v1/line", headers=api.bearer(Role.integrator)), 500)
    assert "boom" not in body["detail"]  # the log has it, the client does not


def test_lists_page_with_limit_and_cursor(api: Api) -> None:
    audit = api.app.state.auth.audit
    for i in range(7):
        audit.record(Actor("cli", "root", None, "local"), "test.step", detail=str(i))
    headers = api.bearer(Role.supervisor)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/api/v1/audit", headers=headers, params=params).json()
        seen += [e["detail"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["6", "5", "4", "3", "2", "1", "0"]
    assert pages == 3
    coldrooms = api.client.get("/api/v1/coldrooms", headers=headers).json()
    assert coldrooms == {"items": [], "next_cursor": None}


def test_openapi_documents_every_response_with_a_schema_and_an_example(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert set(schema["components"]["securitySchemes"]) == {"token", "session"}
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert operations and all(path.startswith("/api/v1/") for path, _, _ in operations)
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        model = components[ok["$ref"].rsplit("/", 1)[1]]
        assert model.get("examples"), f"{where}: its response model has no example"
        for status, response in op["responses"].items():
            if status[0] in "45":
                assert list(response["content"]) == ["application/problem+json"], (where, status)
        assert "503" in op["responses"], where
        if op.get("security"):
            assert {"401", "403"} <= set(op["responses"]), where
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], where
    assert "HTTPValidationError" not in components
