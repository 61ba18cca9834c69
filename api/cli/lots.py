"""``gradeline lot start|close|list|show``.

``start`` and ``close`` change the running line, so they go through its API (``--url``, a token
from ``--token`` or ``GRADELINE_TOKEN``, operator or above): the switch falls at a cup boundary
and is audit-logged as done by that token. ``list`` and ``show`` read the line's database
(``--config``), whether the line runs or not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import date
from typing import Any

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    lot = parsers.root.add_parser("lot", help="Lots: start (or switch), close, list, show.").add_subparsers(
        dest="lot", required=True
    )
    start = lot.add_parser("start", help="Start a lot on the running line (closes the open one at a cup boundary).")
    start.add_argument("code")
    start.add_argument("--grower", required=True, help="Grower's name.")
    start.add_argument("--grower-id", default="")
    start.add_argument("--product", default="", help="Must be the line recipe's product (default: that one).")
    start.add_argument("--variety", default="")
    start.add_argument("--village", default="", help="Origin village.")
    start.add_argument("--plot", default="", help="Origin plot.")
    start.add_argument("--harvest-date", type=date.fromisoformat, help="YYYY-MM-DD.")
    start.add_argument("--received-kg", type=float, help="Received weight in kg.")
    start.add_argument("--platform-trace-code", help="The national platform's 追溯码, as issued (opaque).")
    _api(start)
    start.set_defaults(func=_start)
    close = lot.add_parser("close", help="Close the open lot (the line stops intake first).")
    close.add_argument("id", type=int)
    _api(close)
    close.set_defaults(func=_close)
    listing = lot.add_parser("list", help="Lots, newest first.")
    listing.add_argument("--grower", help="Grower name or ID.")
    listing.add_argument("--product")
    listing.add_argument("--date", type=date.fromisoformat, help="Started on this day (UTC), YYYY-MM-DD.")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="One JSON object per line.")
    listing.add_argument("--config", help="Line config TOML file (its [database]); none = the demo line's.")
    listing.set_defaults(func=_list)
    show = lot.add_parser("show", help="One lot with its pack-out.")
    show.add_argument("id", type=int)
    show.add_argument("--config", help="Line config TOML file (its [database]); none = the demo line's.")
    show.set_defaults(func=_show)


def _api(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="The running line's API (default: this PC's).")
    parser.add_argument("--token", help="API token (operator or above); default: $GRADELINE_TOKEN.")


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    token = args.token or os.environ.get("GRADELINE_TOKEN")
    if not token:
        print("gradeline: a token is needed (--token or GRADELINE_TOKEN)", file=sys.stderr)
        return 2, None
    request = urllib.request.Request(
        args.url.rstrip("/") + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (a URL the operator gives)
            return 0, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        print(f"gradeline: {exc.code}: {detail}", file=sys.stderr)
        return 2, None
    except urllib.error.URLError as exc:
        print(f"gradeline: cannot reach the line at {args.url}: {exc.reason}", file=sys.stderr)
        return 2, None


def _start(args: argparse.Namespace) -> int:
    body = {
        "code": args.code, "grower": args.grower, "grower_id": args.grower_id, "product": args.product,
        "variety": args.variety, "origin_village": args.village, "origin_plot": args.plot,
        "harvest_date": args.harvest_date.isoformat() if args.harvest_date else None,
        "received_weight_kg": args.received_kg, "platform_trace_code": args.platform_trace_code,
    }
    code, out = _call(args, "POST", "/api/v1/lots", body)
    if code:
        return code
    closed = out.get("closed_lot")
    print(f"gradeline: lot {out['lot']['code']} started (id {out['lot']['id']})"
          + (f"; lot {closed['code']} closed" if closed else ""))
    return 0


def _close(args: argparse.Namespace) -> int:
    code, out = _call(args, "POST", f"/api/v1/lots/{args.id}/close")
    if code:
        return code
    print(f"gradeline: lot {out['lot']['code']} closed; {len(out['closed_cartons'])} cartons closed")
    return 0


def _engine(args: argparse.Namespace) -> Any:
    from api.config import ConfigError, load_config
    from grading.store import create_store_engine, migrate

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gradeline: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    engine = create_store_engine(config.database.url)
    migrate(engine)
    return engine


def _lot_json(lot: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(lot).items()}


def _list(args: argparse.Namespace) -> int:
    from grading.lots.lots import list_lots

    engine = _engine(args)
    try:
        found = list_lots(engine, grower=args.grower, product=args.product, on=args.date, limit=args.limit)
    finally:
        engine.dispose()
    for lot in found:
        if args.json:
            print(json.dumps(_lot_json(lot), ensure_ascii=False))
        else:
            state = "open" if lot.is_open else "closed"
            print(f"{lot.id:>5}  {lot.code:<20} {lot.grower:<12} {lot.product:<12} {lot.started_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from grading.lots.lots import LotNotFound, get_lot
    from grading.lots.packout import lot_packout

    engine = _engine(args)
    try:
        lot = get_lot(engine, args.id)
        report = lot_packout(engine, lot.id).as_dict(lot)
    except LotNotFound as exc:
        print(f"gradeline: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(json.dumps(report, ensure_ascii=False, default=str, indent=1))
    return 0
