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

from api.cli import CliParsers


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
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run)


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
        config = load_config(args.config)
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
