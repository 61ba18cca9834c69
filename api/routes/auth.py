"""HMI login by user and PIN, the session it opens (a cookie), and logout.

The PIN check, the lock-out and the per-address limit are ``grading.access``'s; this router
sets and clears the cookie and turns refusals into 401, 423 and 429.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import SESSION_COOKIE, Audit, IntegratorCaller, Principal, PublicCaller, auth_state
from api.problems import TooManyAttempts, Unauthenticated, UserLockedProblem, documented
from grading.access import AddressLimited, BadCredentials, UserLocked

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"user": "张三", "pin": "482913"}]})

    user: str = Field(min_length=1, max_length=64, description="User name (`gradeline user add`).")
    pin: str = Field(pattern=r"^[0-9]{4,12}$", description="4 to 12 digits.")


class SessionInfo(BaseModel):
    """Who is calling; for a login, also the CSRF token its mutating requests must send."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"kind": "user", "name": "张三", "role": "supervisor", "csrf_token": "Xq3v...",
                 "expires_at": "2026-12-02T20:00:00+00:00"},
                {"kind": "token", "name": "county-platform", "role": "integrator", "csrf_token": None, "expires_at": None},
            ]
        }
    )

    kind: str = Field(description="user (an HMI login) or token.")
    name: str
    role: str = Field(description="integrator, operator, supervisor or admin.")
    csrf_token: str | None = Field(description="Send as X-CSRF-Token on POST/PUT/PATCH/DELETE with the cookie.")
    expires_at: datetime | None = Field(description="When the login ends.")


class LogoutResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ended": True}]})

    ended: bool = Field(description="Whether a login was ended (a token has none to end).")


def _info(who: Principal) -> SessionInfo:
    return SessionInfo(kind=who.kind, name=who.name, role=who.role.value, csrf_token=who.csrf_token, expires_at=who.expires_at)


@router.post("/login", response_model=SessionInfo, responses=documented(401, 423, 429))
async def login(body: LoginRequest, request: Request, response: Response, who: PublicCaller, audit: Audit) -> SessionInfo:
    """Check the PIN and set the session cookie (HttpOnly, SameSite=Strict)."""
    state = auth_state(request)
    try:
        session = await asyncio.to_thread(state.access.login, body.user, body.pin, who.client_address)
    except AddressLimited as exc:
        await audit(who, "auth.login", target=body.user, outcome="refused", detail=str(exc))
        raise TooManyAttempts(
            str(exc), headers={"Retry-After": str(int(exc.retry_after_s + 0.999))}, retry_after_s=exc.retry_after_s
        ) from exc
    except UserLocked as exc:
        await audit(who, "auth.login", target=body.user, outcome="refused", detail=str(exc))
        raise UserLockedProblem(str(exc)) from exc
    except BadCredentials as exc:
        await audit(who, "auth.login", target=body.user, outcome="refused", detail=str(exc))
        raise Unauthenticated(str(exc)) from exc
    user = session.user
    signed_in = Principal(
        "user", user.name, user.role, who.client_address, csrf_token=session.csrf_token, expires_at=session.expires_at
    )
    await audit(signed_in, "auth.login", target=user.name)
    response.set_cookie(
        SESSION_COOKIE, session.secret, httponly=True, samesite="strict", path="/",
        secure=request.url.scheme == "https", max_age=int(state.access.policy.session_duration_s),
    )
    return _info(signed_in)


@router.get("/session", response_model=SessionInfo)
async def current(who: IntegratorCaller) -> SessionInfo:
    """Who this credential is; the HMI reads its CSRF token here after a reload."""
    return _info(who)


@router.post("/logout", response_model=LogoutResult)
async def logout(request: Request, response: Response, who: IntegratorCaller, audit: Audit) -> LogoutResult:
    """End this login and clear its cookie. With a token there is nothing to end."""
    ended = False
    if who.kind == "user" and who.secret is not None:
        state = auth_state(request)
        ended = await asyncio.to_thread(state.access.end_session, who.secret)
        state.forget_session(who.secret)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        await audit(who, "auth.logout", target=who.name)
    return LogoutResult(ended=ended)
