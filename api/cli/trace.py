"""``gradeline trace ...``: read GS1 codes from the command line.

``trace label FILE.json`` draws a carton label (PNG, PDF, ZPL) and may send it to a printer.
``trace export lots|cartons|certificates`` writes the line database's records as CSV or JSON for
upload (``grading.trace.exports``; the layout is in docs/traceability.md, "Exports").
``trace parse TEXT`` prints the AIs of an element string (bracketed, unbracketed, or as a
scanner sends it) or a GS1 Digital Link URI as JSON, and exits 2 with the reason when the input
breaks a GS1 rule (grading.trace.gs1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from api.cli import CliParsers
from grading.trace.gs1 import GS1Error, parse


def _unescape(text: str) -> str:
    # a shell cannot easily pass ASCII 29: accept the \x1d and \u001d spellings too
    return text.replace("\\x1d", "\x1d").replace("\\x1D", "\x1d").replace("\\u001d", "\x1d")


def _parse(args: argparse.Namespace) -> int:
    text = sys.stdin.read().rstrip("\r\n") if args.text == "-" else _unescape(args.text)
    try:
        parsed = parse(text)
    except GS1Error as exc:
        print(json.dumps({"valid": False, "reason": str(exc)}, ensure_ascii=False))
        print(f"invalid: {exc}", file=sys.stderr)
        return 2
    out: dict[str, Any] = {
        "valid": True,
        "form": parsed.form,
        "elements": [{"ai": e.ai, "title": e.title, "value": e.value} for e in parsed.elements],
    }
    if parsed.symbology:
        out["symbology"] = parsed.symbology
    if (link := parsed.digital_link) is not None:
        out["digital_link"] = {
            "domain": link.domain, "path_prefix": link.path_prefix, "primary_key": link.primary_key.ai,
            "qualifiers": [q.ai for q in link.qualifiers], "attributes": [a.ai for a in link.attributes],
            "other_query": dict(link.other_query),
        }
    print(json.dumps(out, ensure_ascii=False))
    return 0


def register(parsers: CliParsers) -> None:
    group = parsers.root.add_parser("trace", help="GS1 codes: parse and check; labels; exports.").add_subparsers(dest="trace", required=True)
    p = group.add_parser(
        "parse", help="Parse an element string or GS1 Digital Link URI; exit 2 with the reason if invalid.",
        description="TEXT: (01)...(10)... bracketed; 01...10...<GS>21... unbracketed, with GS (ASCII 29, or "
        "written \\x1d, ^, {GS} or <GS>) after variable-length values; an optional symbology identifier "
        "(]C1, ]d2, ]Q3, ]e0, ]J1, ]Q1); or https://domain/01/... Use - to read one line from stdin.",
    )
    p.add_argument("text", help="The code to parse, or - for stdin.")
    p.set_defaults(func=_parse)
    p = group.add_parser("label", help="Render a carton label from JSON to PNG/PDF/ZPL files or a ZPL printer.",
                         description="JSON fields: gtin, lot, serial, pack_date, net_weight_g, digital_link_base, "
                         "product, quality_class, size_class, origin, grower, grower_privacy, fruit_count, "
                         "platform_trace_code, packing_center, certificate {product_name, quantity, origin, issuer, "
                         "contact, issued_at, lots}. See docs/traceability.md.")
    p.add_argument("json", help="The label's data as a JSON file.")
    p.add_argument("--png", help="Write the PNG preview here.")
    p.add_argument("--pdf", help="Write the PDF preview here.")
    p.add_argument("--zpl", help="Write the ZPL job here.")
    p.add_argument("--print-to", metavar="HOST[:PORT]", help="Send the ZPL job to this printer (raw TCP, port 9100).")
    p.set_defaults(func=_label)
    p = group.add_parser(
        "export", help="Export lots, cartons or certificates as CSV or JSON (docs/traceability.md, Exports).",
        description="Reads the line's database (--config's [database], or --db URL). --since is inclusive, --until "
        "exclusive: YYYY-MM-DD (00:00 UTC) or an ISO 8601 time with offset. UTF-8; CSV without a BOM.",
    )
    p.add_argument("kind", choices=("lots", "cartons", "certificates"))
    p.add_argument("--format", required=True, choices=("csv", "json"), dest="fmt")
    p.add_argument("--since", help="From this date or time (inclusive).")
    p.add_argument("--until", help="Up to this date or time (exclusive).")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--config", help="Line config TOML file (its [database]); none = the demo line's.")
    source.add_argument("--db", help="Database URL (sqlite:///file.db, postgresql+psycopg://...).")
    p.add_argument("--out", help="Write here (default: stdout).")
    p.set_defaults(func=_export)
    register_sim(parsers)


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from api.config import ConfigError, load_config
    from grading.store import create_store_engine, migrate
    from grading.trace.exports import ExportError, export_chunks, parse_bound

    try:
        since = parse_bound(args.since, "--since")
        until = parse_bound(args.until, "--until")
        url = args.db if args.db else load_config(args.config).database.url
    except (ExportError, ConfigError) as exc:
        print(f"gradeline: {exc}", file=sys.stderr)
        return 2
    engine = create_store_engine(url)
    try:
        migrate(engine)
        chunks = export_chunks(engine, args.kind, args.fmt, since=since, until=until)
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(Path(args.out).open("wb")) if args.out else sys.stdout.buffer
            for chunk in chunks:
                out.write(chunk.encode("utf-8"))
            out.flush()
    finally:
        engine.dispose()
    return 0


def _sim_printer(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from simulators.printer_server import PrinterSimulator

    async def run() -> None:
        sim = PrinterSimulator(Path(args.out), host=args.host, port=args.port)
        port = await sim.start()
        print(f"printer simulator listening on {args.host}:{port}, jobs to {args.out}", flush=True)
        await sim.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def register_sim(parsers: CliParsers) -> None:
    p = parsers.sim.add_parser("printer", help="A raw-TCP (9100) ZPL label printer that keeps each job as a file.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100, help="TCP port (0 = a free port, printed).")
    p.add_argument("--out", required=True, help="Folder the jobs are written to (job-00001.zpl, ...).")
    p.set_defaults(func=_sim_printer)


def _label(args: argparse.Namespace) -> int:
    """Render one label from a JSON description (the fields of CartonLabel) to files or a printer."""
    import asyncio
    from datetime import date, datetime
    from pathlib import Path

    from drivers.printer import PrinterError, RawTcpPrinter
    from grading.trace.codes import PrivacyLevel, carton_code
    from grading.trace.labels import CartonLabel, ComplianceCertificate, LabelError, render

    source = Path(args.json)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        code = carton_code(gtin=data["gtin"], lot=data["lot"], serial=data["serial"],
                           pack_date=date.fromisoformat(data["pack_date"]), net_weight_g=int(data["net_weight_g"]))
        cert = data["certificate"]
        label = CartonLabel(
            code=code, digital_link=code.digital_link(data["digital_link_base"]), product=data["product"],
            quality_class=data["quality_class"], size_class=data["size_class"], origin=data["origin"],
            grower=data.get("grower"), grower_privacy=PrivacyLevel(data.get("grower_privacy", "masked")),
            fruit_count=data.get("fruit_count"), platform_trace_code=data.get("platform_trace_code"),
            packing_center=data.get("packing_center", ""),
            certificate=ComplianceCertificate(
                product_name=cert["product_name"], quantity=cert["quantity"], origin=cert["origin"],
                issuer=cert["issuer"], contact=cert["contact"], issued_at=datetime.fromisoformat(cert["issued_at"]),
                lots=tuple(cert.get("lots", ())),
            ),
        )
        rendered = render(label)
    except (OSError, ValueError, KeyError, TypeError, GS1Error, LabelError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"{source}: {what}", file=sys.stderr)
        return 2
    for suffix, content in (("png", args.png), ("pdf", args.pdf), ("zpl", args.zpl)):
        if content:
            payload = rendered.zpl.encode() if suffix == "zpl" else (rendered.png() if suffix == "png" else rendered.pdf())
            Path(content).write_bytes(payload)
    if args.print_to:
        host, _, port = args.print_to.rpartition(":")
        try:
            asyncio.run(RawTcpPrinter(host or args.print_to, int(port) if host else 9100).print_job(rendered.zpl.encode()))
        except PrinterError as exc:
            print(str(exc), file=sys.stderr)
            return 1
    print(json.dumps({"digital_link": label.digital_link, "hri": code.hri()}, ensure_ascii=False))
    return 0
