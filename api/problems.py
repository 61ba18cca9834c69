"""Errors as RFC 9457 problem details (``application/problem+json``), for every route.

Owns the ``Problem`` body, the exceptions handlers raise (``ProblemError`` and its kinds), the
handlers that turn those, FastAPI's validation errors, Starlette's 404/405 and any unexpected
exception into problem+json, and the OpenAPI rewrite that documents every 4xx/5xx answer with
that media type. Specific problems have a ``type`` URN listed in ``docs/api.md``; plain HTTP
errors are ``about:blank`` with the status's title, as RFC 9457 says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class FieldIssue(BaseModel):
    field: str = Field(description="Where: `query.limit`, `path.name`, `body.pin`, ...", examples=["query.limit"])
    message: str = Field(description="What is wrong with it.", examples=["Input should be less than or equal to 500"])


class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` lists the failing fields of a 422."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "a token or a login is needed"},
                {
                    "type": "urn:gradeline:problem:validation", "title": "Unprocessable Content", "status": 422,
                    "detail": "1 field is invalid",
                    "errors": [{"field": "query.limit", "message": "Input should be less than or equal to 500"}],
                },
            ]
        }
    )

    type: str = Field("about:blank", description="URI of the problem type (see docs/api.md).")
    title: str = Field(description="Short, the same for every problem of this type.")
    status: int = Field(ge=400, le=599, description="The HTTP status, repeated.")
    detail: str | None = Field(None, description="What went wrong this time.")
    instance: str | None = Field(None, description="The request path.")
    errors: list[FieldIssue] | None = Field(None, description="For 422: each failing field.")
    retry_after_s: float | None = Field(None, description="For 429: seconds to wait (also in Retry-After).")


class ProblemError(Exception):
    """Raised by handlers and dependencies; becomes a problem+json answer."""

    status = 500
    type = "about:blank"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class Unauthenticated(ProblemError):
    status = 401

    def __init__(self, detail: str = "a token or a login is needed") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="gradeline"'})


class Forbidden(ProblemError):
    status = 403


class CsrfRejected(Forbidden):
    type = "urn:gradeline:problem:csrf"


class NotFoundProblem(ProblemError):
    status = 404


class Conflict(ProblemError):
    status = 409


class UserLockedProblem(ProblemError):
    status = 423
    type = "urn:gradeline:problem:user-locked"


class TooManyAttempts(ProblemError):
    status = 429
    type = "urn:gradeline:problem:too-many-attempts"


class BadGateway(ProblemError):
    status = 502
    type = "urn:gradeline:problem:device"


class Unavailable(ProblemError):
    status = 503
    type = "urn:gradeline:problem:line-unavailable"


def problem_response(
    conn: HTTPConnection,
    status: int,
    detail: str | None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_, "title": title or HTTPStatus(status).phrase, "status": status,
        "detail": detail, "instance": conn.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


def _field(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int) and parts:
            parts[-1] = f"{parts[-1]}[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _allowed_methods(conn: HTTPConnection) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    scope = {**conn.scope, "method": "GET"}  # only the path matters here
    for route in conn.app.router.routes:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            match, _ = route.matches({**scope, "method": method})
            if match == Match.FULL:
                methods.add(method)
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(conn: HTTPConnection, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            conn, exc.status, exc.detail, type_=exc.type, title=exc.title, headers=exc.headers, **exc.extra
        )

    async def on_http(conn: HTTPConnection, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; several routes may
            # share it (GET and POST /api/v1/lots), so Allow lists them all.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(conn))}
        return problem_response(conn, exc.status_code, detail, headers=headers)

    async def on_validation(conn: HTTPConnection, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | WebSocketRequestValidationError)
        issues = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        n = len(issues)
        return problem_response(
            conn, 422, f"{n} field{'s are' if n != 1 else ' is'} invalid",
            type_="urn:gradeline:problem:validation", errors=issues,
        )

    async def on_unexpected(conn: HTTPConnection, exc: Exception) -> JSONResponse:
        log.exception("api: %s %s failed", conn.scope.get("method", "WS"), conn.url.path, exc_info=exc)
        return problem_response(conn, 500, "the server failed; the log says why")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(WebSocketRequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)


_DESCRIPTIONS = {
    400: "The body is not JSON (problem+json).",
    401: "No credential, or one that is not valid (problem+json).",
    403: "The credential's role is below the route's (problem+json); or a missing CSRF token.",
    404: "No such resource (problem+json).",
    409: "The request conflicts with the resource's state (problem+json).",
    422: "A parameter or the body is invalid; `errors` names each field (problem+json).",
    423: "The user is locked after too many wrong PINs (problem+json).",
    429: "Too many wrong PINs from this address; see Retry-After (problem+json).",
    502: "A device the request needs (the label printer) did not take it (problem+json).",
    503: "The line is starting or shutting down (problem+json).",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own problems (those beyond the ones added for every route)."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses}


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that documents, for every operation, the problems it can answer.

    From each route's audience: 401 and 403 unless public, 422 when it takes parameters or a
    body, 400 when it takes a body (one that is not JSON), 503 always (the line starting); plus the route's own (``documented``). Every 4xx/5xx
    is application/problem+json with the ``Problem`` schema, FastAPI's default 422 included.
    """
    from api.auth import Role, route_audiences

    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default()
        least = {}
        for audience in route_audiences(app):
            for method in audience.methods:
                least[(audience.path, method.lower())] = audience.least
        ref = {"$ref": "#/components/schemas/Problem"}
        for path, path_item in schema.get("paths", {}).items():
            for method, operation in path_item.items():
                statuses = {503}
                if least.get((path, method), Role.public) is not Role.public:
                    statuses |= {401, 403}
                if operation.get("parameters") or operation.get("requestBody"):
                    statuses.add(422)
                if operation.get("requestBody"):
                    statuses.add(400)
                responses = operation.setdefault("responses", {})
                for status in sorted(statuses):
                    if status == 422 or str(status) not in responses:
                        responses[str(status)] = {"description": _DESCRIPTIONS[status], "content": {MEDIA_TYPE: {"schema": ref}}}
                for status, response in responses.items():
                    content = response.get("content")
                    if str(status)[0] in "45" and content and "application/json" in content:
                        content[MEDIA_TYPE] = content.pop("application/json")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(Problem.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {}))
        components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components["Problem"].pop("$defs", None)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    return openapi


class InvalidParameter(ProblemError):
    """A parameter FastAPI could not check by its type (a cursor, say); reads like its 422s."""

    status = 422
    type = "urn:gradeline:problem:validation"

    def __init__(self, field: str, message: str) -> None:
        super().__init__("1 field is invalid", errors=[{"field": field, "message": message}])
