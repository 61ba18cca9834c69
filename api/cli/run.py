"""``gradeline run`` (serve the line and its API) and ``gradeline check-config``."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
import socket
import sys
from functools import partial
from pathlib import Path

from api.cli import CliParsers
from api.config import ConfigError, LineConfig, load_config


def register(parsers: CliParsers) -> None:
    run = parsers.root.add_parser("run", help="Run the line and serve the API (no config: the simulated demo line).")
    run.add_argument("--config", help="Line config TOML file.")
    run.add_argument(
        "--host", help="Bind address (default from config: 127.0.0.1; see docs/operations.md before widening it)."
    )
    run.add_argument("--port", type=int, help="TCP port (default from config: 8080; 0 = any free port).")
    run.add_argument("--stopped", action="store_true", help="Start with intake stopped.")
    run.add_argument(
        "--world",
        action="store_true",
        help="Run the config's line against the simulated world (gradeline sim line) in a child process, "
        "every device over its real driver: the default without --config.",
    )
    run.add_argument(
        "--world-truth-dir", default="var/world-truth", help="Where the simulated world writes its truth log."
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument(
        "--access-log", action="store_true",
        help="Log every HTTP request (uvicorn's access log; off by default: it writes on the line's loop).",
    )
    run.set_defaults(func=_run)

    check = parsers.root.add_parser("check-config", help="Validate a line config; print every error.")
    check.add_argument("file")
    check.set_defaults(func=_check)


def _load(path: str | None) -> LineConfig | None:
    """The config and its recipe, checked together; prints every problem and returns None."""
    from grading.outlets import OutletAssigner
    from grading.recipe import RecipeError, load_recipe

    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None
    try:
        recipe = load_recipe(config.recipe)
    except RecipeError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None
    if recipe.quality_model is not None:
        # the line scores fruit with it: a model that does not load must stop the start
        from vision.quality import QualityModel, QualityModelError

        try:
            QualityModel.load(recipe.quality_model)
        except QualityModelError as exc:
            print(f"{config.recipe}: quality_model: {exc}", file=sys.stderr)
            return None
    for problem in OutletAssigner(config.outlets).coverage_issues(recipe):
        # Not fatal: an operator may deliberately recirculate a class. Said once, at start.
        print(f"{path or '<demo config>'}: outlets: warning: {problem}", file=sys.stderr)
    return config


def _check(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return 2
    print(f"{args.file}: ok ({config.line.lanes} lanes, {len(config.outlets)} outlets, recipe {config.recipe})")
    return 0


def _run(args: argparse.Namespace) -> int:
    # `kill -USR1 <pid>` prints every thread's stack and every pending asyncio task to stderr:
    # what a line that does not stop is waiting for, without stopping it
    signal.signal(signal.SIGUSR1, _print_pending_tasks)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=True)
    config = _load(args.config)
    if config is None:
        return 2
    if args.world or args.config is None:
        from api.world import line_config_for_world, start_world

        # The demo: the simulated conveyor, PLC, scales, camera and cold rooms in their own
        # process, the line's real drivers talking to them over TCP. It stops with the line.
        print("gradeline: starting the simulated world (the first start renders its camera cycle)", flush=True)
        with start_world(config, Path(args.world_truth_dir)) as world:
            return _serve(args, line_config_for_world(config, world.banner))
    return _serve(args, config)


def _print_pending_tasks(_sig: int, _frame: object) -> None:
    """The event loop's pending tasks and where each waits (the threads' stacks do not show
    it: the loop's own thread only sits in ``select``). Runs in the main thread, the loop's."""
    loop = asyncio._get_running_loop()
    tasks = asyncio.all_tasks(loop) if loop is not None else set()
    print(f"gradeline: {len(tasks)} pending asyncio task(s)", file=sys.stderr)
    for task in tasks:
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


def _ask_for_priority(nice: int) -> None:
    """Run at ``nice`` (threads and vision workers inherit it; the workers add their own +5)."""
    current = os.nice(0)
    if nice == current:
        return
    try:
        os.nice(nice - current)
    except PermissionError:
        logging.getLogger("gradeline").warning(
            "cannot raise the line's CPU priority to nice %d (needs CAP_SYS_NICE: run it as a systemd service "
            "with Nice=%d); it runs at nice %d, and a busy PC can make its decisions late", nice, nice, current,
        )


def demo_link_base(config: LineConfig, host: str, port: int) -> LineConfig:
    """The demo config with its Digital Link base on the address the line serves on (loopback
    when it listens on every address, since that is where this PC's browser finds it)."""
    assert config.trace is not None
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    trace = config.trace.model_copy(update={"digital_link_base": f"http://{shown}:{port}"})
    return config.model_copy(update={"trace": trace})


def _serve(args: argparse.Namespace, config: LineConfig) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pymodbus logs every failed request with a raw-frame dump; our drivers log each fault once.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    _ask_for_priority(config.line.cpu_nice)
    host = args.host or config.api.host
    port = config.api.port if args.port is None else args.port
    # Bind first so the real port is known (and printed) even with --port 0.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"gradeline: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    bound_port = sock.getsockname()[1]
    if args.config is None and config.trace is not None:
        # The demo's labels link to the demo's own resolver: scanning one opens its consumer page here.
        config = demo_link_base(config, host, bound_port)
    # Listen now: uvicorn accepts only once the line is open (vision workers warm, devices open),
    # and a client arriving before then should wait in the backlog, not be refused.
    sock.listen(128)
    # Imported here so that check-config and the other commands stay light.
    import uvicorn

    from api.app import create_app
    from api.compose import open_line

    app = create_app(partial(open_line, config, start=not args.stopped), freeze_gc=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level=args.log_level, timeout_graceful_shutdown=2, lifespan="on", access_log=args.access_log,
            # the client address (rate limits, audit) and https (Secure cookie) as a trusted proxy saw them
            proxy_headers=True, forwarded_allow_ips=[str(n) for n in config.api.trusted_proxies],
        )
    )
    print(f"gradeline: serving http://{host}:{bound_port}/", flush=True)
    # uvicorn turns SIGINT/SIGTERM into a graceful shutdown: the lifespan exit stops intake,
    # flushes every pending record and closes the devices. Afterwards it re-raises the signal
    # to whatever handler was installed before it; a no-op one lets a clean stop exit 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _sig, _frame: None)
    server.run(sockets=[sock])
    final = getattr(app.state, "final_snapshot", None)
    if final is None:
        print("gradeline: the line did not start", file=sys.stderr)
        return 1
    print(
        f"gradeline: line stopped: fruit_total={final['fruit_total']} fruit_rows_written={final['fruit_rows_written']}",
        file=sys.stderr, flush=True,
    )
    return 0
