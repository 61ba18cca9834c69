"""The ``gradeline`` command line: one parser, sub-commands registered by feature modules.

Each feature module exposes ``register(subparsers)`` and, where it has benchmarks,
``register_bench(bench_subparsers)``. A handler takes the parsed args and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api.cli import sim, vision


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradeline", description="Fruit grading-line control software.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="Benchmarks; each prints a JSON line last.")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    for module in (vision, sim):
        module.register(sub)
        module.register_bench(bench_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
