"""Recipes as versioned data: the exact text a lot was graded by, kept in the database.

A recipe version is its text, named by the SHA-256 of that text: the same text stored twice is
one version. ``validate_recipe_text`` is the one check a recipe's text passes before it is
stored or activated (the recipe loader's validation; a stricter check plugs in there). Which
version a line grades its next lot by is ``active_recipes``; activating one is audited by the
caller (``api.routes.recipes``).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from grading.config import ConfigIssue
from grading.recipe import Recipe, RecipeError, builtin_recipe_names, load_recipe, parse_recipe
from grading.schema import active_recipes, recipe_versions


@dataclass(frozen=True, slots=True)
class RecipeVersion:
    hash: str
    name: str
    product: str
    text: str
    created_at: datetime
    created_by: str


def recipe_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recipe_source(ref: str | Path) -> tuple[Path, str]:
    """The file and text of a built-in recipe name or a recipe file path."""
    ref_text = str(ref)
    path = Path(ref_text)
    if ref_text in builtin_recipe_names():
        path = Path(__file__).resolve().parents[1] / "recipes" / f"{ref_text}.toml"
    return path, path.read_text(encoding="utf-8")


def validate_recipe_text(text: str, file: str = "<recipe>", base_dir: Path | None = None) -> Recipe:
    """The recipe ``text`` holds, or ``RecipeError`` naming every problem by its dotted path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError([ConfigIssue(file, "(toml)", str(exc))]) from exc
    try:
        return parse_recipe(data, file, base_dir=base_dir)
    except (ValueError, OSError) as exc:  # e.g. a quality_model path the OS cannot take
        raise RecipeError([ConfigIssue(file, "quality_model", str(exc))]) from exc


def store_recipe_version(engine: Engine, text: str, *, recipe: Recipe, at: datetime, by: str) -> RecipeVersion:
    """Keep ``text`` (already validated as ``recipe``); returns the stored version (the first
    one stored, when the same text is stored again)."""
    digest = recipe_hash(text)
    with engine.begin() as conn:
        row = conn.execute(select(recipe_versions).where(recipe_versions.c.hash == digest)).mappings().first()
        if row is None:
            conn.execute(
                insert(recipe_versions).values(
                    hash=digest, name=recipe.name, product=recipe.product, text=text, created_at=at, created_by=by
                )
            )
            return RecipeVersion(digest, recipe.name, recipe.product, text, at, by)
    return RecipeVersion(**dict(row))


def store_recipe_ref(engine: Engine, ref: str | Path, *, at: datetime, by: str) -> tuple[RecipeVersion, Recipe]:
    """Store the recipe a line config names (built-in or file), as loaded."""
    path, text = recipe_source(ref)
    recipe = load_recipe(ref)
    return store_recipe_version(engine, text, recipe=recipe, at=at, by=by), recipe


def get_recipe_version(engine: Engine, digest: str) -> RecipeVersion | None:
    with engine.connect() as conn:
        row = conn.execute(select(recipe_versions).where(recipe_versions.c.hash == digest)).mappings().first()
    return None if row is None else RecipeVersion(**dict(row))


def list_recipe_versions(engine: Engine, product: str | None = None) -> list[RecipeVersion]:
    query = select(recipe_versions).order_by(recipe_versions.c.created_at.desc(), recipe_versions.c.hash)
    if product is not None:
        query = query.where(recipe_versions.c.product == product)
    with engine.connect() as conn:
        return [RecipeVersion(**dict(row)) for row in conn.execute(query).mappings()]


def recipe_of_version(version: RecipeVersion) -> Recipe:
    return validate_recipe_text(version.text, f"recipe {version.hash[:12]}")


def activate_recipe(engine: Engine, line: str, digest: str, *, at: datetime, by: str) -> str | None:
    """Make ``digest`` the recipe ``line``'s next lot is graded by; returns the previous one."""
    with engine.begin() as conn:
        previous = conn.execute(
            select(active_recipes.c.recipe_hash).where(active_recipes.c.line == line)
        ).scalar_one_or_none()
        if previous is None:
            conn.execute(insert(active_recipes).values(line=line, recipe_hash=digest, activated_at=at, activated_by=by))
        else:
            conn.execute(
                update(active_recipes).where(active_recipes.c.line == line)
                .values(recipe_hash=digest, activated_at=at, activated_by=by)
            )
    return previous


def active_recipe_hash(engine: Engine, line: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(active_recipes.c.recipe_hash).where(active_recipes.c.line == line)
        ).scalar_one_or_none()
