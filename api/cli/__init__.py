"""The ``gradeline`` command line: one parser, sub-commands registered by feature modules.

Each feature module exposes ``register(parsers: CliParsers)`` and adds its commands to the
groups it needs (top level, ``sim``, ``bench``, ``vision``); a module may add a group of its own
(``user``, ``token``). A handler takes the parsed args
and returns the exit code; it is attached with ``parser.set_defaults(func=handler)``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CliParsers:
    root: argparse._SubParsersAction
    sim: argparse._SubParsersAction
    bench: argparse._SubParsersAction
    vision: argparse._SubParsersAction


def build_parser() -> argparse.ArgumentParser:
    from api.cli import (
        access,
        bench_api,
        bench_crash,
        bench_line,
        bench_outbox,
        bench_packout,
        grading,
        lots,
        recipe,
        run,
        sim_line,
        sim_modbus,
        sim_scale,
        trace,
        vision,
        vision_bench,
    )

    parser = argparse.ArgumentParser(prog="gradeline", description="Fruit grading-line control software.")
    root = parser.add_subparsers(dest="command", required=True)
    groups = CliParsers(
        root=root,
        sim=root.add_parser("sim", help="Run a wire-level device simulator.").add_subparsers(dest="sim", required=True),
        bench=root.add_parser("bench", help="Benchmarks; each prints a JSON line last.").add_subparsers(
            dest="bench", required=True
        ),
        vision=root.add_parser("vision", help="Calibrate, measure, train.").add_subparsers(dest="vision", required=True),
    )
    for module in (
        run, access, grading, lots, recipe, bench_line, bench_outbox, bench_crash, bench_api, bench_packout, vision,
        vision_bench, sim_scale, sim_modbus, sim_line, trace,
    ):
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
