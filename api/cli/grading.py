"""``gradeline bench grader``: grading speed against a naive recipe interpreter, same run."""

from __future__ import annotations

import argparse
import json

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    bench = parsers.bench.add_parser("grader", help="Grader speed vs a naive interpreter (JSON last line).")
    bench.add_argument("--recipe", default="apple", help="Built-in recipe name or recipe file.")
    bench.add_argument("--fruit", type=int, default=20000, help="Random fruit per repeat.")
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from grading.grader import benchmark
    from grading.recipe import load_recipe

    result = benchmark(load_recipe(args.recipe), args.fruit)
    if not args.json:
        print(f"recipe {args.recipe}: {result}")
    print(json.dumps(result))
    return 0
