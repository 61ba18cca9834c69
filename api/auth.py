"""Who is calling, and whether a route lets them: the audience every route declares.

A route declares the least role it needs with one parameter, which also hands the handler
the caller (``Principal``)::

    @router.post("/stop", response_model=LineSnapshot)
    async def stop(who: OperatorCaller, audit: Audit, runtime: Runtime) -> ...:

``PublicCaller`` declares a public route. ``secure_routes(app)`` runs when the app is built and
again at start-up: it refuses any route without exactly one declaration, and any mutating
route (POST, PUT, PATCH, DELETE) that does not take ``Audit``. ``api.problems`` documents the
401/403/422/503 problems each route can answer from the same declarations.

Credentials, in order: ``Authorization: Bearer <token>`` (integrators and scripts), then the
HMI's session cookie (HttpOnly, SameSite=Strict), whose mutating requests must also carry the
session's CSRF token in ``X-CSRF-Token``. A checked credential is trusted for
``auth.credential_cache_s`` before it is looked up again, so a busy integrator costs the
database one query per token per interval, not one per request.

The domain rules (PINs, lock-out, what a role is) are in ``grading.access``; this module
only maps them onto HTTP.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from api.problems import CsrfRejected, Forbidden, Unauthenticated, Unavailable
from grading.access import AccessStore, LockoutPolicy, Role, Session, Token
from grading.audit import Actor, AuditLog

SESSION_COOKIE = "gradeline_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="token", bearerFormat="glt_...",
    description="An API token from `gradeline token create`, as `Authorization: Bearer glt_...`.",
)
_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, scheme_name="session",
    description="The HMI's login (POST /api/v1/auth/login). Mutating requests also need the X-CSRF-Token header.",
)


class RouteWithoutAudience(RuntimeError):
    """A route does not declare who may call it (or a mutating route keeps no audit trail)."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request: an HMI user, an API token, or the public."""

    kind: str  # user, token, public
    name: str
    role: Role
    client_address: str
    csrf_token: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)  # the cookie or token, to check it again later
    expires_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.kind, self.name, self.role.value if self.kind != "public" else None, self.client_address)


class CredentialCache:
    """Recently checked tokens and sessions, each trusted for ``ttl_s`` (monotonic time)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, Token | Session | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Token | Session | None]:
        hit = self._entries.get(key)
        if hit is None or hit[0] <= self._clock():
            return False, None
        return True, hit[1]

    def put(self, key: str, value: Token | Session | None) -> None:
        self._entries[key] = (self._clock() + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class AuthState:
    """The app's access machinery for one running line (``app.state.auth``)."""

    def __init__(
        self,
        access: AccessStore,
        audit: AuditLog,
        *,
        cache_s: float,
        metrics_public_networks: Sequence[IPv4Network | IPv6Network],
    ) -> None:
        self.access = access
        self.audit = audit
        self.cache = CredentialCache(cache_s)
        self.metrics_public_networks = tuple(metrics_public_networks)

    async def token(self, secret: str) -> Token | None:
        key = "t:" + secret
        hit, value = self.cache.get(key)
        if not hit:
            value = await asyncio.to_thread(self.access.token, secret)
            self.cache.put(key, value)
        return value if isinstance(value, Token) else None

    async def session(self, secret: str) -> Session | None:
        key = "s:" + secret
        hit, value = self.cache.get(key)
        if not hit:
            value = await asyncio.to_thread(self.access.session, secret)
            self.cache.put(key, value)
        if isinstance(value, Session) and value.expires_at > self.access.now():
            return value
        return None

    def forget_session(self, secret: str) -> None:
        self.cache.forget("s:" + secret)

    async def still_valid(self, who: Principal) -> bool:
        """For long-lived connections: is the credential behind ``who`` still good?"""
        if who.kind == "public" or who.secret is None:
            return True
        found = await (self.token(who.secret) if who.kind == "token" else self.session(who.secret))
        return found is not None


def build_auth_state(engine: Any, config: Any) -> AuthState:
    """From the line's database engine and config (``handle.engine``, ``handle.config``)."""
    auth = config.auth
    policy = LockoutPolicy(
        user_failures_to_lock=auth.pin_failures_to_lock,
        address_failures_limit=auth.address_failures_limit,
        address_window_s=auth.address_window_s,
        session_duration_s=auth.session_hours * 3600.0,
    )
    return AuthState(
        AccessStore(engine, policy=policy), AuditLog(engine),
        cache_s=auth.credential_cache_s, metrics_public_networks=config.api.metrics_public_networks,
    )


def auth_state(conn: HTTPConnection) -> AuthState:
    state: AuthState | None = getattr(conn.app.state, "auth", None)
    if state is None:
        raise Unavailable("the line is starting or shutting down")
    return state


def client_address(conn: HTTPConnection) -> str:
    """The caller's address; behind a trusted proxy, the one it forwarded (uvicorn applies it)."""
    return conn.client.host if conn.client is not None else "unknown"


# ------------------------------------------------------------------------- audiences


class Audience:
    """A route's declaration: the least role it needs. As a dependency it authenticates."""

    def __init__(self, least: Role) -> None:
        self.least = least

    def __repr__(self) -> str:
        return f"Audience({self.least.value})"


class _PublicAudience(Audience):
    def __init__(self) -> None:
        super().__init__(Role.public)

    async def __call__(self, conn: HTTPConnection) -> Principal:
        return Principal("public", "public", Role.public, client_address(conn))


class _RoleAudience(Audience):
    def __init__(self, least: Role, *, anonymous_from_metrics_networks: bool = False) -> None:
        super().__init__(least)
        self.anonymous_from_metrics_networks = anonymous_from_metrics_networks

    async def __call__(
        self,
        conn: HTTPConnection,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
        cookie: Annotated[str | None, Security(_cookie_scheme)],
    ) -> Principal:
        state = auth_state(conn)
        address = client_address(conn)
        who: Principal
        if bearer is not None:
            token = await state.token(bearer.credentials)
            if token is None:
                raise Unauthenticated("the token is not valid: unknown or revoked")
            who = Principal("token", token.name, token.role, address, secret=bearer.credentials)
        elif cookie:
            session = await state.session(cookie)
            if session is None:
                raise Unauthenticated("the login has ended: log in again")
            who = Principal(
                "user", session.user.name, session.user.role, address,
                csrf_token=session.csrf_token, secret=cookie, expires_at=session.expires_at,
            )
            _check_cookie_request(conn, session.csrf_token)
        elif self.anonymous_from_metrics_networks and _in_networks(address, state.metrics_public_networks):
            return Principal("public", "public", Role.public, address)
        else:
            raise Unauthenticated()
        if not self.least.allows(who.role):
            raise Forbidden(f"needs the {self.least.value} role or above; this {who.kind} is {who.role.value}")
        return who


def _check_cookie_request(conn: HTTPConnection, csrf_token: str) -> None:
    """A cookie rides along on any request the browser makes: prove this one came from our page."""
    if conn.scope["type"] == "websocket":
        # Browsers send no custom headers on a WebSocket handshake, but always send Origin.
        origin = conn.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != conn.headers.get("host"):
            raise CsrfRejected("a logged-in WebSocket must come from this server's own page")
        return
    if conn.scope["method"] in SAFE_METHODS:
        return
    sent = conn.headers.get(CSRF_HEADER)
    if not sent or not hmac.compare_digest(sent, csrf_token):
        raise CsrfRejected(f"a logged-in request that changes something needs the {CSRF_HEADER} header of its session")


def _in_networks(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


PUBLIC = _PublicAudience()

PublicCaller = Annotated[Principal, Depends(PUBLIC)]
"""Anyone, without a credential (health, the HMI's own files, later the consumer pages)."""
IntegratorCaller = Annotated[Principal, Depends(_RoleAudience(Role.integrator))]
"""Any token or login: reads what the line's screen shows."""
OperatorCaller = Annotated[Principal, Depends(_RoleAudience(Role.operator))]
"""Runs the line: start, stop."""
SupervisorCaller = Annotated[Principal, Depends(_RoleAudience(Role.supervisor))]
"""Reads the audit log; later recipes, lots and outlet plans."""
AdminCaller = Annotated[Principal, Depends(_RoleAudience(Role.admin))]
"""Users and settings."""
MetricsCaller = Annotated[Principal, Depends(_RoleAudience(Role.integrator, anonymous_from_metrics_networks=True))]
"""/metrics: integrator, or anyone from ``api.metrics_public_networks`` (the Prometheus scraper)."""


# ------------------------------------------------------------------------- the audit trail


class AuditTrail:
    """Records what a handler did, for the caller of its request."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    async def __call__(
        self,
        who: Principal,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "ok",
        before: Any = None,
        after: Any = None,
        detail: str = "",
    ) -> None:
        await asyncio.to_thread(
            self._log.record, who.actor, action, target=target, outcome=outcome, before=before, after=after, detail=detail
        )


async def audit_trail(conn: HTTPConnection) -> AuditTrail:
    # async: FastAPI runs a plain def dependency in a worker thread, a hand-off per request
    return AuditTrail(auth_state(conn).audit)


Audit = Annotated[AuditTrail, Depends(audit_trail)]
"""Every mutating route takes this and records what it did."""


# ------------------------------------------------------------------------- the start-up check


@dataclass(frozen=True)
class RouteAudience:
    path: str
    methods: frozenset[str]  # {"WEBSOCKET"} for a WebSocket route
    least: Role
    anonymous_networks: bool

    @property
    def mutating(self) -> bool:
        return bool(self.methods - SAFE_METHODS - {"WEBSOCKET"})


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _walk(sub)


def route_audiences(app: FastAPI) -> list[RouteAudience]:
    """Every route with its declaration; raises ``RouteWithoutAudience`` naming each bad one."""
    found: list[RouteAudience] = []
    problems: list[str] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path_format or context.path or str(route)
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            problems.append(f"{path}: not a FastAPI route, so it cannot declare an audience")
            continue
        methods = frozenset(context.methods or ()) if isinstance(route, APIRoute) else frozenset({"WEBSOCKET"})
        where = f"{' '.join(sorted(methods))} {path}"
        calls = [d.call for d in _walk(context.dependant)]
        audiences: list[Audience] = []
        for call in calls:
            if isinstance(call, Audience) and call not in audiences:
                audiences.append(call)
        if len(audiences) != 1:
            problems.append(
                f"{where}: declares {len(audiences)} audiences; take exactly one of "
                "PublicCaller, IntegratorCaller, OperatorCaller, SupervisorCaller, AdminCaller"
            )
            continue
        audience = audiences[0]
        entry = RouteAudience(
            path, methods, audience.least,
            isinstance(audience, _RoleAudience) and audience.anonymous_from_metrics_networks,
        )
        if entry.mutating and audit_trail not in calls:
            problems.append(f"{where}: changes something, so it must take Audit and record what it did")
        found.append(entry)
    if problems:
        raise RouteWithoutAudience("; ".join(problems))
    return found


def secure_routes(app: FastAPI) -> list[RouteAudience]:
    """Refuse an app with a route that does not declare its audience; see ``route_audiences``."""
    return route_audiences(app)
