"""HMI login over HTTP: the cookie, CSRF on mutating requests, lock-out, logout, and what the audit log keeps."""

from __future__ import annotations

from grading.access import Role
from tests.unit.api.conftest import Api


def _login(api: Api, user: str, pin: str) -> dict:  # type: ignore[type-arg]
    response = api.client.post("/api/v1/auth/login", json={"user": user, "pin": pin})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_login_sets_a_strict_httponly_cookie_and_csrf_guards_mutations(api: Api) -> None:
    api.access.add_user("王五", Role.operator, "135790")
    response = api.client.post("/api/v1/auth/login", json={"user": "王五", "pin": "135790"})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("gradeline_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    info = response.json()
    assert (info["kind"], info["name"], info["role"]) == ("user", "王五", "operator")
    csrf = info["csrf_token"]

    assert api.client.get("/api/v1/line").status_code == 200  # reads need no CSRF token
    assert api.client.get("/api/v1/auth/session").json()["csrf_token"] == csrf  # after a reload
    refused = api.client.post("/api/v1/line/start")
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:gradeline:problem:csrf"
    assert api.client.post("/api/v1/line/start", headers={"X-CSRF-Token": "forged"}).status_code == 403
    started = api.client.post("/api/v1/line/start", headers={"X-CSRF-Token": csrf})
    assert started.status_code == 200 and started.json()["state"] == "running"
    assert api.client.get("/api/v1/audit").status_code == 403  # an operator is below the audit log

    assert api.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).json() == {"ended": True}
    assert api.client.get("/api/v1/line").status_code == 401


def test_a_token_needs_no_csrf_token(api: Api) -> None:
    response = api.client.post("/api/v1/line/start", headers=api.bearer(Role.operator))
    assert response.status_code == 200


def test_wrong_pins_lock_the_user_and_an_admin_unlocks(api: Api) -> None:
    api.access.add_user("lin", Role.supervisor, "2468")
    for _ in range(4):
        wrong = api.client.post("/api/v1/auth/login", json={"user": "lin", "pin": "0000"})
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == "application/problem+json"
    fifth = api.client.post("/api/v1/auth/login", json={"user": "lin", "pin": "0000"})
    assert fifth.status_code == 423 and fifth.json()["type"] == "urn:gradeline:problem:user-locked"
    assert api.client.post("/api/v1/auth/login", json={"user": "lin", "pin": "2468"}).status_code == 423

    users = api.client.get("/api/v1/users", headers=api.bearer(Role.admin)).json()["items"]
    assert [(u["name"], u["locked"], u["failed_pins"]) for u in users] == [("lin", True, 5)]
    assert api.client.post("/api/v1/users/lin/unlock", headers=api.bearer(Role.supervisor)).status_code == 403
    unlocked = api.client.post("/api/v1/users/lin/unlock", headers=api.bearer(Role.admin))
    assert unlocked.status_code == 200 and unlocked.json()["locked"] is False
    assert _login(api, "lin", "2468")["role"] == "supervisor"
    assert api.client.post("/api/v1/users/nobody/unlock", headers=api.bearer(Role.admin)).status_code == 404

    entries = api.client.get("/api/v1/audit", headers=api.bearer(Role.supervisor), params={"limit": 500}).json()["items"]
    logins = [(e["action"], e["outcome"], e["actor_kind"]) for e in entries if e["target"] == "lin"]
    assert logins[0] == ("auth.login", "ok", "user")
    assert ("user.unlock", "ok", "token") in logins
    assert logins.count(("auth.login", "refused", "public")) == 6
    unlock = next(e for e in entries if e["action"] == "user.unlock")
    assert unlock["actor"] == "test-admin"
    assert unlock["before"] == {"locked": True, "failed_pins": 5}
    assert unlock["after"] == {"locked": False, "failed_pins": 0}
    assert unlock["client_address"] == "192.0.2.10"


def test_too_many_wrong_pins_from_one_address_answer_429_with_retry_after(api: Api) -> None:
    limit = api.access.policy.address_failures_limit
    for i in range(limit):
        assert api.client.post("/api/v1/auth/login", json={"user": f"guess{i}", "pin": "0000"}).status_code == 401
    limited = api.client.post("/api/v1/auth/login", json={"user": "anyone", "pin": "0000"})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["retry_after_s"] > 0


def test_login_validation_names_the_field(api: Api) -> None:
    response = api.client.post("/api/v1/auth/login", json={"user": "lin", "pin": "12ab"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.pin"]


def test_session_info_for_a_token(api: Api) -> None:
    info = api.client.get("/api/v1/auth/session", headers=api.bearer(Role.integrator)).json()
    assert info == {"kind": "token", "name": "test-integrator", "role": "integrator", "csrf_token": None, "expires_at": None}
    assert api.client.post("/api/v1/auth/logout", headers=api.bearer(Role.integrator)).json() == {"ended": False}
