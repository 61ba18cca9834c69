"""``gradeline sim line``: the simulated world of one line in its own process.

Reads the same line TOML the line uses, renders (or loads from the cache) the camera cycle,
starts the PLC, one indicator per lane, the camera stream and the cold rooms
(``simulators/world.py``), prints ONE JSON banner line with every endpoint, then runs until
SIGINT or SIGTERM, flushes the truth log and exits 0. Logs go to stderr; stdout carries only
the banner. ``api/world.py`` starts it as a subprocess and reads the banner.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from api.cli import CliParsers

if TYPE_CHECKING:
    from api.config import LineConfig


def register(parsers: CliParsers) -> None:
    p = parsers.sim.add_parser(
        "line",
        help="The whole simulated line (PLC, scales, camera, cold rooms) over real protocols, "
        "with a truth log.",
    )
    p.add_argument("--config", type=Path, default=None, help="Line config TOML (default: demo).")
    p.add_argument(
        "--truth-dir",
        type=Path,
        default=Path("var/world-truth"),
        help="Directory for cups.jsonl, drops.jsonl, frames.jsonl and world.json.",
    )
    p.add_argument("--host", default="127.0.0.1", help="Address to bind (loopback by default).")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="Prerendered camera cycles (default: simulation.world.cache_dir, var/sim-cache).",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=None,
        help="Run at this nice value: the simulated devices stand in for hardware with processors of its own, "
        "and should not lose time to the line on a shared PC (below 0 needs CAP_SYS_NICE).",
    )
    p.add_argument(
        "--prerender-only",
        action="store_true",
        help="Render the camera cycle into the cache (or find it there) and exit; make does this for the demo.",
    )
    p.add_argument(
        "--darken-lane",
        action="append",
        default=[],
        metavar="LANE[:FROM_CUP[:GAIN]]",
        help="Fault: this lane's camera view darkens (brightness x GAIN, default 0.6) once cup FROM_CUP "
        "(default 0) reaches the inspection point; lanes count from 0. Adds to simulation.faults.camera_darken.",
    )
    p.add_argument(
        "--scale-drift",
        action="append",
        default=[],
        metavar="LANE[:FROM_CUP[:G_PER_100_CUPS]]",
        help="Fault: this lane's load cell reads G_PER_100_CUPS grams more (default 2) per 100 cups from cup "
        "FROM_CUP (default 0) on. Adds to simulation.faults.scale_drift.",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run)


def with_fault_options(config: LineConfig, darken: list[str], drift: list[str]) -> LineConfig:
    """The config with the ``--darken-lane`` / ``--scale-drift`` faults added to its simulation.

    Raises ``ValueError`` naming the option for a malformed value.
    """
    from pydantic import ValidationError

    from simulators.settings import CameraLaneFault, ScaleDriftFault

    def parse(option: str, text: str, keys: tuple[str, str, str]) -> dict[str, float]:
        parts = text.split(":")
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"{option} {text!r}: expected LANE[:FROM_CUP[:VALUE]]")
        try:
            return {key: float(part) if key == keys[2] else int(part) for key, part in zip(keys, parts, strict=False)}
        except ValueError as exc:
            raise ValueError(f"{option} {text!r}: {exc}") from exc

    if not darken and not drift:
        return config
    faults = config.simulation.faults
    try:
        camera = [CameraLaneFault.model_validate(parse("--darken-lane", t, ("lane", "from_cup", "gain"))) for t in darken]
        scale = [
            ScaleDriftFault.model_validate(parse("--scale-drift", t, ("lane", "from_cup", "drift_g_per_100_cups")))
            for t in drift
        ]
    except ValidationError as exc:
        raise ValueError(f"fault option: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    new_faults = faults.model_copy(
        update={"camera_darken": [*faults.camera_darken, *camera], "scale_drift": [*faults.scale_drift, *scale]}
    )
    return config.model_copy(update={"simulation": config.simulation.model_copy(update={"faults": new_faults})})


def _run(args: argparse.Namespace) -> int:
    from api.config import ConfigError, load_config
    from api.world import world_plan
    from grading.recipe import RecipeError
    from simulators.world import LineWorld
    from simulators.world_cycle import WorldConfigError

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    source = str(args.config) if args.config else "<demo config>"
    if args.nice is not None:
        try:
            os.nice(args.nice - os.nice(0))
        except PermissionError:
            logging.getLogger("simulators.world").warning("cannot run at nice %d; the world may stall on a busy PC", args.nice)
    try:
        config = with_fault_options(load_config(args.config), args.darken_lane, args.scale_drift)
        world = LineWorld(
            world_plan(config, host=args.host), args.truth_dir, cache_dir=args.cache_dir
        )
    except (ConfigError, RecipeError) as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 2
    except WorldConfigError as exc:
        print(f"{source}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2

    if args.prerender_only:
        cycle = world.prerender()
        print(f"{source}: camera cycle {cycle.cache_path} ({len(cycle.frames)} frames, "
              f"{'rendered' if cycle.rendered else 'found'} in {cycle.seconds:.1f} s)")
        return 0

    async def main() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Installed before the (possibly long) prerender, so a stop request then is honoured
        # as soon as the world is up instead of killing it half-built.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        try:
            banner = await world.start()
            print(json.dumps(banner), flush=True)
            await done.wait()
        finally:
            await world.stop()

    asyncio.run(main())
    return 0
