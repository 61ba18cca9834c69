"""A recipe that refers to a taught quality model: the line scores its fruit with it.

The model here grades by the skin's mean lightness, so its score can be checked against the
simulator's truth of each cup's colour; the fruit's record carries the fused score.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from api.compose import open_line
from api.config import parse_config
from grading.schema import fruit
from vision.quality import QualityModel

pytestmark = pytest.mark.slow


def _taught_recipe(directory: Path) -> Path:
    """The built-in apple recipe, referring to ``model.json`` beside it."""
    builtin = (Path(__file__).parents[2] / "grading" / "recipes" / "apple.toml").read_text(encoding="utf-8")
    first_table = builtin.index("\n[")  # top-level keys go before the first table
    recipe = directory / "apple-taught.toml"
    recipe.write_text(builtin[:first_table] + '\nquality_model = "model.json"\n' + builtin[first_table:], encoding="utf-8")
    return recipe


def test_the_line_scores_fruit_with_the_recipes_model(tmp_path: Path, until, lightness_model: QualityModel) -> None:  # type: ignore[no-untyped-def]
    lightness_model.save(tmp_path / "model.json")
    recipe = _taught_recipe(tmp_path)
    config = parse_config(
        {
            "line": {"lanes": 2, "cups_per_second": 6.0},
            "camera": {"geometry": {"height_px": 320, "fps": 12.0}},
            "database": {"url": f"sqlite:///{tmp_path}/line.db"},
            "recipe": str(recipe),
            "simulation": {"seed": 5},
        }
    )

    async def scenario():  # type: ignore[no-untyped-def]
        async with open_line(config) as handle:
            await until(lambda: handle.runtime.counters.fruit_total >= 30, 90, "30 graded fruit")
            await handle.runtime.stop_intake()
            handle.writer.flush(30)
            with handle.engine.connect() as conn:
                return conn.execute(select(fruit)).mappings().all()

    rows = asyncio.run(scenario())
    # cups already past the middle of the frame when intake started were never in the window
    first = {lane: min(r["cup_index"] for r in rows if r["lane"] == lane) for lane in (0, 1)}
    later = [r for r in rows if r["cup_index"] > first[r["lane"]] + 4 and "edge" not in r["flags"]]
    scores = [r["quality_score"] for r in later if r["quality_score"] is not None]
    # every fruit that crossed the middle of the frame whole was scored
    assert len(later) >= 15 and len(scores) == len(later)
    # L* of apple skin lies between about 30 and 75: grades 3-7.5, scores 0.2-0.75
    assert all(0.1 < s < 0.85 for s in scores)
    assert max(scores) - min(scores) > 0.05  # lighter and darker fruit score apart


def test_a_model_that_does_not_load_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text('{"format": "gradeline-quality-model", "format_version": 99}', encoding="utf-8")
    recipe = _taught_recipe(tmp_path)
    config = tmp_path / "line.toml"
    config.write_text(f'recipe = "{recipe}"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"{recipe}: quality_model: ")
