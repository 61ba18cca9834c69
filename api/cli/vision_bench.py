"""``gradeline bench vision`` (speed) and ``gradeline bench vision-accuracy`` (ground truth).

Thin: parses options, runs the harnesses in ``vision.bench`` and prints. The last stdout
line is always one JSON object; without ``--json`` a human summary comes first.
"""

from __future__ import annotations

import argparse
import json
import time

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    speed = parsers.bench.add_parser(
        "vision",
        help="Frame pipeline speed on 1280x480 four-lane frames, one core, against a bare-OpenCV baseline.",
    )
    speed.add_argument("--json", action="store_true", help="Print only the JSON line.")
    speed.add_argument("--frames", type=int, default=40, help="Distinct frames per pass (default 40).")
    speed.add_argument("--repeats", type=int, default=7, help="Timed passes; medians are reported (default 7).")
    speed.add_argument("--seed", type=int, default=1)
    speed.add_argument("--product", default="apple", choices=["apple", "cherry", "mango", "pomegranate"])
    speed.add_argument(
        "--learn-background", action="store_true",
        help="Learn the belt from empty frames first (as the runtime can at start-up) instead of estimating it per frame.",
    )
    speed.set_defaults(func=_run_speed)

    acc = parsers.bench.add_parser(
        "vision-accuracy",
        help="Render fruit with exact truth, run pipeline and tracker, score the fused records.",
    )
    acc.add_argument("--json", action="store_true", help="Print only the JSON line.")
    acc.add_argument("--products", default="apple", help="Comma list of products (default apple).")
    acc.add_argument("--seeds", default="1,2,3", help="Comma list of seeds (default 1,2,3).")
    acc.add_argument("--cups-per-lane", type=int, default=45, help="Cups per lane per seed (default 45: 4 lanes x 3 seeds = 540 cups).")
    acc.add_argument("--mm-per-px", type=float, default=0.3)
    acc.add_argument("--step-cups", type=float, default=0.25, help="Belt advance between frames, in cups.")
    acc.add_argument("--blur-px", type=float, default=0.7)
    acc.add_argument("--noise", type=float, default=2.0, help="Sensor noise sigma, 8-bit levels.")
    acc.add_argument("--drift", type=float, default=0.05, help="Lighting drift amplitude.")
    acc.add_argument("--defect-rate", type=float, default=0.3)
    acc.add_argument("--no-learned-background", action="store_true", help="Estimate the belt per frame instead of learning it.")
    acc.set_defaults(func=_run_accuracy)


def _run_speed(args: argparse.Namespace) -> int:
    import numpy as np

    from simulators.fruit import CupTruth
    from vision.bench import bench_frames, bench_renderer, bench_speed

    frames = bench_frames(args.frames, seed=args.seed, product=args.product)
    empty: list[np.ndarray] = []
    if args.learn_background:
        renderer = bench_renderer(args.seed)
        empty = [renderer.render(-100.0 - i, lambda lane, k: CupTruth(lane, k, ())) for i in range(3)]
    result = bench_speed(frames, repeats=args.repeats, product=args.product, empty_frames=empty)
    result["product"] = args.product
    if not args.json:
        print(
            f"pipeline {result['fruit_views_per_s']} fruit-views/s, baseline {result['baseline_fruit_views_per_s']}"
            f" (ratio {result['ratio']}); {result['fruit_views_per_frame']} fruit per frame, medians of {args.repeats}"
        )
    print(json.dumps(result))
    return 0


def _run_accuracy(args: argparse.Namespace) -> int:
    from simulators.settings import SimulatedCameraSettings, SimulationSettings
    from vision.bench import evaluate_accuracy, summarise

    camera = SimulatedCameraSettings(blur_px=args.blur_px, noise_sigma=args.noise, lighting_drift=args.drift)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    products = [p for p in args.products.split(",") if p]
    started = time.perf_counter()
    per_product: dict[str, dict[str, float | int]] = {}
    all_scores = []
    for product in products:
        scores = []
        for seed in seeds:
            sim = SimulationSettings(seed=seed, defect_rate=args.defect_rate, empty_cup_rate=0.03, double_fruit_rate=0.02)
            scores.append(
                evaluate_accuracy(
                    product, seed, args.cups_per_lane, mm_per_px=args.mm_per_px, step_cups=args.step_cups,
                    camera=camera, simulation=sim, learn_background=not args.no_learned_background,
                )
            )
        per_product[product] = summarise(scores)
        all_scores += scores
        if not args.json:
            print(product, json.dumps(per_product[product]))
    result: dict[str, object] = dict(summarise(all_scores))
    result.update(
        products=products, seeds=seeds, mm_per_px=args.mm_per_px, blur_px=args.blur_px, noise=args.noise,
        drift=args.drift, learned_background=not args.no_learned_background,
        seconds=round(time.perf_counter() - started, 1),
    )
    if len(products) > 1:
        result["per_product"] = per_product
    print(json.dumps(result))
    return 0
