"""Recipe versions for supervisors: list, read, validate, store, activate (audit-logged).

A version is the exact text of a recipe, named by its SHA-256 (``grading.lots.recipes``). Every
lot stores the version it was graded by. Activating a version makes it the recipe the line
grades by from its next start (``gradeline run``): the vision settings come from the recipe,
so a running line does not change recipe under its lot.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor

from api.auth import Audit, SupervisorCaller
from api.problems import InvalidParameter, NotFoundProblem, documented
from api.routes.deps import get_handle
from api.routes.lots import who_text
from grading.lots import recipes as store
from grading.recipe import RecipeError
from grading.schema import as_utc


class Sha256Convertor(Convertor[str]):
    """A recipe version in a path: 64 lower-case hex digits (so /validate is not a version)."""

    regex = "[0-9a-f]{64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sha256", Sha256Convertor())
router = APIRouter(prefix="/api/v1/recipes", tags=["recipes"])

_VERSION: dict[str, Any] = {"hash": "9f2c41d0c7b5e1e8a6a0f1e25b7c3d7a4c8b1f0e2d3c4b5a69788776655443322", "name": "apple",
            "product": "apple", "created_at": "2026-12-02T07:00:00+00:00", "created_by": "config", "active": True}


class RecipeVersionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_VERSION]})

    hash: str = Field(description="SHA-256 of the text.")
    name: str
    product: str
    created_at: datetime | None
    created_by: str
    active: bool = Field(description="The version this line grades its next start by.")


class RecipeTextOut(RecipeVersionOut):
    model_config = ConfigDict(json_schema_extra={"examples": [_VERSION | {"text": "format_version = 1\n..."}]})

    text: str


class RecipePage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_VERSION], "next_cursor": None}]})

    items: list[RecipeVersionOut]
    next_cursor: str | None


class RecipeTextIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "format_version = 1\n..."}]})

    text: str = Field(min_length=1, max_length=200_000, description="The recipe's TOML text.")


class ValidationOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"valid": False, "hash": "ab12...", "issues": [{"field": "size_classes[1].min", "message": "overlaps 70-75"}]}
    ]})

    valid: bool
    hash: str
    name: str | None = None
    product: str | None = None
    issues: list[dict[str, str]]


def _out(version: store.RecipeVersion, active: str | None) -> dict[str, Any]:
    return {"hash": version.hash, "name": version.name, "product": version.product,
            "created_at": as_utc(version.created_at), "created_by": version.created_by, "active": version.hash == active}


def _validate(text: str) -> tuple[Any, list[dict[str, str]]]:
    try:
        return store.validate_recipe_text(text, "body.text"), []
    except RecipeError as exc:
        return None, [{"field": i.field, "message": i.message} for i in exc.issues]


@router.get("", response_model=RecipePage)
async def list_recipes(request: Request, _: SupervisorCaller, product: str | None = None) -> dict[str, Any]:
    """Stored recipe versions, newest first."""
    handle = get_handle(request)
    versions = await asyncio.to_thread(store.list_recipe_versions, handle.engine, product)
    active = await asyncio.to_thread(store.active_recipe_hash, handle.engine, handle.config.line.name)
    return {"items": [_out(v, active) for v in versions], "next_cursor": None}


@router.get("/{digest:sha256}", response_model=RecipeTextOut, responses=documented(404))
async def read_recipe(request: Request, digest: str, _: SupervisorCaller) -> dict[str, Any]:
    handle = get_handle(request)
    version = await asyncio.to_thread(store.get_recipe_version, handle.engine, digest)
    if version is None:
        raise NotFoundProblem(f"no recipe version {digest}")
    active = await asyncio.to_thread(store.active_recipe_hash, handle.engine, handle.config.line.name)
    return _out(version, active) | {"text": version.text}


@router.post("/validate", response_model=ValidationOut)
async def validate(body: RecipeTextIn, who: SupervisorCaller, audit: Audit) -> dict[str, Any]:
    """Check a recipe's text without storing it; every problem by its dotted path."""
    recipe, issues = _validate(body.text)
    await audit(who, "recipe.validate", target=store.recipe_hash(body.text)[:12], outcome="ok",
                detail="valid" if recipe else f"{len(issues)} issues")
    return {"valid": recipe is not None, "hash": store.recipe_hash(body.text), "issues": issues,
            "name": recipe.name if recipe else None, "product": recipe.product if recipe else None}


@router.post("", response_model=RecipeVersionOut, responses=documented(422))
async def store_recipe(request: Request, body: RecipeTextIn, who: SupervisorCaller, audit: Audit) -> dict[str, Any]:
    """Store a recipe version (validated first; the same text is the same version)."""
    handle = get_handle(request)
    recipe, issues = _validate(body.text)
    if recipe is None:
        await audit(who, "recipe.store", outcome="refused", detail="; ".join(f"{i['field']}: {i['message']}" for i in issues))
        raise InvalidParameter(f"body.text.{issues[0]['field']}", issues[0]["message"])
    version = await asyncio.to_thread(store.store_recipe_version, handle.engine, body.text, recipe=recipe,
                                      at=datetime.now(UTC), by=who_text(who))
    await audit(who, "recipe.store", target=version.hash, after={"name": version.name, "product": version.product})
    active = await asyncio.to_thread(store.active_recipe_hash, handle.engine, handle.config.line.name)
    return _out(version, active)


@router.post("/{digest:sha256}/activate", response_model=RecipeVersionOut, responses=documented(404))
async def activate(request: Request, digest: str, who: SupervisorCaller, audit: Audit) -> dict[str, Any]:
    """Make a stored version the recipe this line grades by from its next start."""
    handle = get_handle(request)
    version = await asyncio.to_thread(store.get_recipe_version, handle.engine, digest)
    if version is None:
        raise NotFoundProblem(f"no recipe version {digest}")
    previous = await asyncio.to_thread(store.activate_recipe, handle.engine, handle.config.line.name, digest,
                                       at=datetime.now(UTC), by=who_text(who))
    await audit(who, "recipe.activate", target=digest, before={"recipe_hash": previous}, after={"recipe_hash": digest})
    return _out(version, digest)
