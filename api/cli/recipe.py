"""``gradeline recipe check`` and ``gradeline recipe new``: recipe files from the command line.

``check`` prints every problem ``grading.recipe_check`` finds as ``FILE: dotted.path: message``
and exits 2, or says OK and exits 0. ``new`` starts a recipe for another product from an
existing one, keeping its comments and layout (tomlkit), and marks every threshold it copied
unverified: a number taken from another product's standard is no source for this one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from api.cli import CliParsers

EXIT_PROBLEMS = 2


def register(parsers: CliParsers) -> None:
    group = parsers.root.add_parser("recipe", help="Check recipe files, start new ones.").add_subparsers(
        dest="recipe", required=True
    )
    check = group.add_parser("check", help="Find gaps, overlaps, unknown keys and impossible limits (exit 2 on any).")
    check.add_argument("file", help="Recipe file, or a built-in recipe name.")
    check.add_argument("--json", action="store_true", help="Print the problems as one JSON line.")
    check.set_defaults(func=_check)
    new = group.add_parser("new", help="Start a new recipe from an existing one.")
    new.add_argument("--from", dest="source", required=True, help="Built-in recipe name or recipe file to start from.")
    new.add_argument("--product", required=True, help="Product id of the new recipe (lower case, e.g. durian).")
    new.add_argument("--name", help="Recipe name (default: the product id).")
    new.add_argument("--out", type=Path, help="File to write (default: ./<name>.toml); never overwritten.")
    new.set_defaults(func=_new)


def _check(args: argparse.Namespace) -> int:
    from grading.recipe_check import check_recipe_file

    problems = check_recipe_file(args.file)
    if args.json:
        print(json.dumps({"file": args.file, "ok": not problems, "problems": [
            {"path": p.path, "message": p.message, "kind": p.kind} for p in problems
        ]}, ensure_ascii=False))
    else:
        for problem in problems:
            print(f"{args.file}: {problem}")
        if not problems:
            print(f"{args.file}: OK")
    return EXIT_PROBLEMS if problems else 0


def _new(args: argparse.Namespace) -> int:
    import re

    import tomlkit

    from grading.recipe import PRODUCT_PATTERN, builtin_recipe_names, builtin_recipe_path
    from grading.recipe_check import check_recipe_text

    if not re.match(PRODUCT_PATTERN, args.product):
        print(f"--product: {args.product!r} is not a product id (lower case letters, digits, _)", file=sys.stderr)
        return EXIT_PROBLEMS
    source = builtin_recipe_path(args.source) if args.source in builtin_recipe_names() else Path(args.source)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{source}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    document = tomlkit.parse(text)
    from_name = str(document.get("name", args.source))
    name = args.name or args.product
    document["name"] = name
    document["product"] = args.product
    document["variety"] = ""
    copied = f" [copied from recipe {from_name!r} by `gradeline recipe new`: not a source for {args.product}]"
    for table in _threshold_tables(document):
        table["source"] = str(table.get("source", "")) + copied
        table["status"] = "unverified"
    head = tomlkit.comment(
        f"Started from recipe {from_name!r} for {args.product}: every threshold below is still "
        f"{from_name}'s; replace each with {args.product}'s standard and cite it."
    )
    document.body.insert(0, (None, head))
    out: Path = args.out or Path(f"{name}.toml")
    new_text = tomlkit.dumps(document)
    try:
        with out.open("x", encoding="utf-8") as handle:
            handle.write(new_text)
    except FileExistsError:
        print(f"{out}: exists; not overwritten (choose another --out)", file=sys.stderr)
        return EXIT_PROBLEMS
    except OSError as exc:
        print(f"{out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    problems = check_recipe_text(new_text, base_dir=out.parent)
    for problem in problems:
        print(f"{out}: {problem}")
    print(f"{out}: new recipe {name!r} for {args.product} from {from_name!r}" + ("" if problems else "; checks OK"))
    return EXIT_PROBLEMS if problems else 0


def _threshold_tables(document: Any) -> list[Any]:
    """The size bands and rules: the tables that carry a source and status."""
    tables = list(document.get("size_classes", []))
    for quality in document.get("quality_classes", []):
        tables.extend(quality.get("rules", []))
    return tables
