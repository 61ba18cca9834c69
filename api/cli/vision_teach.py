"""``gradeline vision train`` and ``gradeline bench quality``: teaching a quality model from
labelled photos, and judging it honestly.

Owns reading label files (with the fruit each photo shows, from a ``group`` column or the
file name), the features of every usable photo, cross-validation grouped by fruit against
a colour baseline on the same folds, and what the two commands print. The model and its
evaluation maths are ``vision.quality``; photos are read and segmented as in
``api.cli.vision``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from api.cli import CliParsers
from api.cli.vision import EXIT_OK, EXIT_USAGE, PhotoReadError, print_error, read_photo
from vision.photo import NoFruitFound, find_photo_fruit
from vision.quality import (
    BASELINE_NAMES,
    FEATURE_NAMES,
    CrossValidation,
    QualityModel,
    bootstrap_interval,
    colour_statistics,
    cross_validate,
    extract_features,
    good_vs_bad_auc,
    grouped_folds,
    spearman,
    stratified_folds,
)

# The fruit a photo shows, from its file name when the label file has no ``group`` column:
# the name before its trailing number, as the teaching workflow asks staff to name photos
# of one fruit taken on several days (``A017.jpg``, ``A023.jpg`` -> ``A``).
_NAME_PREFIX = re.compile(r"^(.*?)[\s_\-]*\d+$")


def fruit_of(path: str, pattern: re.Pattern[str] = _NAME_PREFIX) -> str:
    """The fruit identity in a photo's file name (its stem without the trailing number)."""
    stem = Path(path).stem
    match = pattern.search(stem)
    if match is None:
        return stem
    return match.group(1) if match.groups() else match.group(0)


@dataclass(frozen=True)
class LabelledPhoto:
    path: str
    grade: float
    group: str | None  # from the label file's ``group`` column, if it has one


@dataclass(frozen=True)
class LabelledFeatures:
    paths: list[str]
    features: np.ndarray  # (n, len(FEATURE_NAMES))
    baseline: np.ndarray  # (n, len(BASELINE_NAMES)): the colour statistics
    grades: np.ndarray
    groups: np.ndarray  # fruit identity per photo
    group_source: str  # where the groups came from, for the report
    problems: list[str]  # one message per photo left out
    feature_s: list[float]  # seconds per photo, for the bench
    photos_listed: int


def read_labels(csv_path: Path, grade_column: str = "grade") -> list[LabelledPhoto]:
    """The rows of a label file; paths are relative to the file. A ``group`` column, when
    present, names the fruit each photo shows."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            if "path" not in fields or grade_column not in fields:
                raise ValueError(f"{csv_path}: needs columns 'path' and '{grade_column}', has {fields}")
            rows = []
            for number, row in enumerate(reader, start=2):
                try:
                    grade = float(row[grade_column])
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{csv_path}:{number}: grade {row[grade_column]!r} is not a number") from exc
                if not math.isfinite(grade):
                    raise ValueError(f"{csv_path}:{number}: grade must be finite")
                group = (row.get("group") or "").strip() if "group" in fields else None
                if group == "":
                    raise ValueError(f"{csv_path}:{number}: the group column is empty")
                rows.append(LabelledPhoto(str(csv_path.parent / row["path"]), grade, group))
    except OSError as exc:
        raise ValueError(f"{csv_path}: cannot read: {exc.strerror or exc}") from exc
    if not rows:
        raise ValueError(f"{csv_path}: no rows")
    return rows


def labelled_features(
    csv_path: Path,
    grade_column: str = "grade",
    group_pattern: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LabelledFeatures:
    """Features of every usable photo in a label file; unusable ones are listed, not fatal.

    The fruit of each photo comes from the ``group`` column, else from ``group_pattern``
    (a regex on the file name's stem; its first group), else from the name's prefix
    (``fruit_of``).
    """
    rows = read_labels(csv_path, grade_column)
    pattern = re.compile(group_pattern) if group_pattern else _NAME_PREFIX
    if rows[0].group is not None:
        source = "the label file's group column"
    elif group_pattern:
        source = f"file names matching /{group_pattern}/"
    else:
        source = "file-name prefixes (the name without its trailing number)"
    paths, features, baseline, grades, groups, problems, seconds = [], [], [], [], [], [], []
    for row in rows:
        started = clock()
        try:
            image = read_photo(row.path)
            mask = find_photo_fruit(image).mask
            row_features = extract_features(image, mask)
            row_baseline = colour_statistics(image, mask)
        except (PhotoReadError, NoFruitFound, ValueError) as exc:
            problems.append(f"{row.path}: {exc}" if not isinstance(exc, PhotoReadError) else str(exc))
            continue
        seconds.append(clock() - started)
        paths.append(row.path)
        features.append(row_features)
        baseline.append(row_baseline)
        grades.append(row.grade)
        groups.append(row.group if row.group is not None else fruit_of(row.path, pattern))
    return LabelledFeatures(
        paths,
        np.array(features, dtype=np.float64).reshape(len(features), len(FEATURE_NAMES)),
        np.array(baseline, dtype=np.float64).reshape(len(baseline), len(BASELINE_NAMES)),
        np.array(grades),
        np.array(groups, dtype=object),
        source,
        problems,
        seconds,
        len(rows),
    )


def _load_training_set(args: argparse.Namespace) -> LabelledFeatures | None:
    try:
        data = labelled_features(Path(args.labels), args.grade_column, getattr(args, "group_pattern", None))
    except (ValueError, re.error) as exc:
        print_error(str(exc))
        return None
    for problem in data.problems:
        print_error(f"left out: {problem}")
    print_error(f"note: {len(data.grades)} of {data.photos_listed} photo(s) usable")
    if len(np.unique(data.grades)) < 2 or len(data.grades) < 10:
        print_error(f"need at least 10 usable photos over at least 2 grades, have {len(data.grades)}")
        return None
    return data


@dataclass(frozen=True)
class Evaluation:
    """The model and the colour baseline on the same folds."""

    protocol: str
    folds: list[np.ndarray]
    model: CrossValidation
    baseline: CrossValidation
    interval_auc: tuple[float, float]  # 95 % bootstrap over fruit, of the pooled figure
    interval_spearman: tuple[float, float]


def _protocol_folds(data: LabelledFeatures, protocol: str, folds: int, seed: int) -> tuple[str, list[np.ndarray], np.ndarray]:
    """Test folds and the groups the inner search keeps together, for ``protocol``."""
    if protocol == "stratified":
        return "stratified k-fold (photos of one fruit may sit on both sides)", stratified_folds(
            data.grades, folds, seed
        ), np.arange(len(data.grades))
    fruit = len(set(data.groups.tolist()))
    if fruit < folds:
        print_error(
            f"note: only {fruit} fruit identities from {data.group_source}: too few for {folds} grouped folds, "
            "so every photo counts as its own fruit (name photos of one fruit with one prefix, or add a group column)"
        )
        groups = np.arange(len(data.grades))
        return "grouped (every photo its own fruit)", grouped_folds(data.grades, groups, folds, seed), groups
    return f"grouped by fruit ({fruit} fruit, from {data.group_source})", grouped_folds(
        data.grades, data.groups, folds, seed
    ), data.groups


def evaluate(data: LabelledFeatures, protocol: str = "grouped", folds: int = 5, seed: int = 0) -> Evaluation:
    described, test_folds, groups = _protocol_folds(data, protocol, folds, seed)
    model = cross_validate(data.features, data.grades, test_folds=test_folds, groups=groups)
    # The baseline on the same folds: a linear model on the colour a colour sorter sees.
    # The taught model is worth its features only where it beats this.
    baseline = cross_validate(
        data.baseline, data.grades, test_folds=test_folds, groups=groups, feature_names=BASELINE_NAMES
    )
    return Evaluation(
        described,
        test_folds,
        model,
        baseline,
        bootstrap_interval(good_vs_bad_auc, model.predicted, data.grades, groups),
        bootstrap_interval(spearman, model.predicted, data.grades, groups),
    )


def _figures(cv: CrossValidation) -> dict[str, Any]:
    return {
        "roc_auc_1_3_vs_8_10": round(cv.mean_roc_auc_1_3_vs_8_10, 4),
        "spearman": round(cv.mean_spearman, 4),
        "pooled_roc_auc_1_3_vs_8_10": round(cv.pooled_roc_auc_1_3_vs_8_10, 4),
        "pooled_spearman": round(cv.pooled_spearman, 4),
    }


def _train(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    data = _load_training_set(args)
    if data is None:
        return EXIT_USAGE
    features_s = time.perf_counter() - started
    groups = data.groups if len(set(data.groups.tolist())) >= 2 else np.arange(len(data.grades))
    fit_started = time.perf_counter()
    model = QualityModel.fit(data.features, data.grades, groups=groups, ridge_lambda=args.ridge_lambda)
    fit_s = time.perf_counter() - fit_started
    counts = {f"{g:g}": int(c) for g, c in zip(*np.unique(data.grades, return_counts=True), strict=True)}
    folds = min(5, len(set(data.groups.tolist())), len(data.grades) // 2)
    estimate: dict[str, Any] = {}
    if folds >= 2:
        ev = evaluate(data, "grouped", folds, 0)
        estimate = {
            "cv": ev.protocol,
            "cv_folds": folds,
            "cv_spearman": round(ev.model.pooled_spearman, 4),
            "cv_spearman_95ci": [round(v, 4) for v in ev.interval_spearman],
            "cv_roc_auc_1_3_vs_8_10": round(ev.model.pooled_roc_auc_1_3_vs_8_10, 4),
            "cv_roc_auc_95ci": [round(v, 4) for v in ev.interval_auc],
            "baseline_cv_spearman": round(ev.baseline.pooled_spearman, 4),
            "baseline_cv_roc_auc_1_3_vs_8_10": round(ev.baseline.pooled_roc_auc_1_3_vs_8_10, 4),
        }
    notes = {
        "variety": args.variety,
        "labels": str(args.labels),
        "photos": len(data.grades),
        "photos_left_out": len(data.problems),
        "fruit": len(set(data.groups.tolist())),
        "grade_counts": counts,
        **estimate,
    }
    model = dataclasses.replace(model, notes=notes)
    try:
        model.save(args.out)
    except OSError as exc:
        print_error(f"{args.out}: cannot write: {exc.strerror or exc}")
        return EXIT_USAGE
    summary = {
        "model": str(args.out),
        **notes,
        "ridge_lambda": model.ridge_lambda,
        "ood_threshold": round(model.ood_threshold or 0.0, 3),
        "train_s": round(fit_s, 4),
        "features_s": round(features_s, 3),
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return EXIT_OK
    print(f"trained on {summary['photos']} photo(s) of {summary['fruit']} fruit ({summary['photos_left_out']} left out) in "
          f"{features_s:.1f} s features + {fit_s:.1f} s fit; wrote {args.out}")
    if estimate:
        nan = float("nan")
        low, high = estimate["cv_spearman_95ci"]
        print(f"grouped {folds}-fold cross-validation on these photos ({estimate['cv']}): rank agreement with "
              f"the grades (Spearman) {estimate['cv_spearman']:.2f}, 95 % interval over fruit {low:.2f}-{high:.2f}")
        auc = estimate["cv_roc_auc_1_3_vs_8_10"]
        if not math.isnan(auc):
            low, high = estimate["cv_roc_auc_95ci"]
            print(f"  grades 1-3 told from 8-10 (ROC AUC) {auc:.2f}, 95 % interval {low:.2f}-{high:.2f}")
        baseline = estimate.get("baseline_cv_spearman", nan)
        verdict = "beats" if estimate["cv_spearman"] > baseline else "does NOT beat"
        print(f"  colour-only baseline, same folds: Spearman {baseline:.2f}; the model {verdict} it")
        print("  this is an estimate from fruit like these photos, not a promise for other fruit or light")
    strongest = sorted(zip(model.weights, model.feature_names, strict=True), key=lambda w: -abs(w[0]))[:5]
    print("strongest features (+ = worse grade): " + ", ".join(f"{n} {w:+.2f}" for w, n in strongest))
    return EXIT_OK


def _bench_quality(args: argparse.Namespace) -> int:
    data = _load_training_set(args)
    if data is None:
        return EXIT_USAGE
    try:
        ev = evaluate(data, args.protocol, args.folds, args.seed)
    except ValueError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    cv, baseline = ev.model, ev.baseline
    result = {
        "bench": "quality",
        "labels": str(args.labels),
        "photos": int(len(data.grades)),
        "photos_listed": data.photos_listed,
        "photos_left_out": len(data.problems),
        "fruit": len(set(data.groups.tolist())),
        "folds": args.folds,
        "seed": args.seed,
        "protocol": ev.protocol,
        **_figures(cv),
        "pooled_roc_auc_95ci": [round(v, 4) for v in ev.interval_auc],
        "pooled_spearman_95ci": [round(v, 4) for v in ev.interval_spearman],
        "roc_auc_per_fold": [None if f.roc_auc_1_3_vs_8_10 is None else round(f.roc_auc_1_3_vs_8_10, 4) for f in cv.folds],
        "spearman_per_fold": [round(f.spearman, 4) for f in cv.folds],
        "ridge_lambda_per_fold": [f.ridge_lambda for f in cv.folds],
        "train_s_median": round(statistics.median(f.train_s for f in cv.folds), 5),
        "train_s_per_fold": [round(f.train_s, 5) for f in cv.folds],
        "features_ms_per_photo_median": round(1000 * statistics.median(data.feature_s), 2),
        "features_s_total": round(sum(data.feature_s), 3),
        "baseline_colour_only": {
            **_figures(baseline),
            "roc_auc_per_fold": [
                None if f.roc_auc_1_3_vs_8_10 is None else round(f.roc_auc_1_3_vs_8_10, 4) for f in baseline.folds
            ],
            "spearman_per_fold": [round(f.spearman, 4) for f in baseline.folds],
        },
        "beats_baseline": bool(
            cv.mean_roc_auc_1_3_vs_8_10 > baseline.mean_roc_auc_1_3_vs_8_10 and cv.mean_spearman > baseline.mean_spearman
        ),
    }
    if not args.json:
        print(f"{result['photos']} photos of {result['fruit']} fruit, {args.folds} folds ({ev.protocol}, seed {args.seed})")
        for f, b in zip(cv.folds, baseline.folds, strict=True):
            auc = "n/a" if f.roc_auc_1_3_vs_8_10 is None else f"{f.roc_auc_1_3_vs_8_10:.3f}"
            base_auc = "n/a" if b.roc_auc_1_3_vs_8_10 is None else f"{b.roc_auc_1_3_vs_8_10:.3f}"
            print(f"fold {f.fold}: train {f.train_count} test {f.test_count}  AUC(1-3 vs 8-10) {auc} (baseline "
                  f"{base_auc})  Spearman {f.spearman:.3f} (baseline {b.spearman:.3f})  lambda {f.ridge_lambda:g}")
        print(f"mean: AUC {result['roc_auc_1_3_vs_8_10']:.3f}  Spearman {result['spearman']:.3f}   "
              f"(colour-only baseline: AUC {baseline.mean_roc_auc_1_3_vs_8_10:.3f}, "
              f"Spearman {baseline.mean_spearman:.3f})")
    print(json.dumps(result))
    return EXIT_OK


def register(parsers: CliParsers) -> None:
    train = parsers.vision.add_parser(
        "train",
        help="Teach a quality model from labelled photos.",
        description="Fit a quality model from a CSV with columns path,grade (paths relative to the CSV; "
        "grade 1 = best). Extra columns are ignored.",
    )
    _labels_arguments(train)
    train.add_argument("--out", required=True, metavar="MODEL", help="Where to write the model JSON.")
    train.add_argument("--variety", default="", help="Variety name stored in the model, for people.")
    train.add_argument(
        "--ridge-lambda", type=float, default=None, metavar="L",
        help="Fixed ridge strength; default: chosen by inner cross-validation.",
    )
    train.add_argument("--json", action="store_true", help="Print the summary as one JSON object.")
    train.set_defaults(func=_train)

    bench = parsers.bench.add_parser(
        "quality",
        help="Cross-validated accuracy and training time of the quality model on labelled photos.",
    )
    _labels_arguments(bench)
    bench.add_argument("--folds", type=int, default=5, help="Number of folds (default 5).")
    bench.add_argument("--seed", type=int, default=0, help="Fold assignment seed (default 0).")
    bench.add_argument(
        "--protocol", choices=("grouped", "stratified"), default="grouped",
        help="grouped (default): every photo of one fruit in one fold, fruit from the label file's group "
        "column or the file-name prefix; stratified: folds balanced by grade only, which lets one fruit sit "
        "on both sides and flatters the model (for comparison).",
    )
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench_quality)


def _labels_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels", required=True, metavar="CSV",
        help="CSV with columns path,grade and optionally group (which fruit the photo shows).",
    )
    parser.add_argument("--grade-column", default="grade", help="Name of the grade column (default grade).")
    parser.add_argument(
        "--group-pattern", metavar="REGEX", default=None,
        help="Without a group column: the fruit is this regex's first group on the file name's stem "
        "(default: the stem without its trailing number, e.g. A017 -> A).",
    )
