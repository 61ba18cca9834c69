"""``gradeline vision calibrate|measure|train`` and ``gradeline bench quality``.

Owns the file side of the vision tools: reading photos and label files, printing results,
and writing calibration results into the line's TOML config in place (keeping the user's
comments and layout, then re-validating with ``grading.config``). The image work itself is
in ``vision.calibration``, ``vision.photo``, ``vision.pipeline`` and ``vision.quality``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from api.cli import CliParsers
from grading.config import ConfigError, LineConfig, load_config, parse_config
from vision.calibration import CalibrationError, calibrate_checkerboard, calibrate_disc, undistort
from vision.colour import CANONICAL_CLASSES
from vision.photo import NoFruitFound, background_bgr, segment_fruits
from vision.pipeline import FramePipeline, VisionSettings
from vision.quality import (
    FEATURE_NAMES,
    QualityModel,
    QualityModelError,
    cross_validate,
    extract_features,
    spearman,
)

PROG = "gradeline vision"
# Exit codes: 0 done, 1 some inputs failed (the rest were processed), 2 unusable request.
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _error(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


class PhotoReadError(Exception):
    """A file could not be read or is not an image OpenCV can decode."""


def read_photo(path: str | Path) -> np.ndarray:
    """An 8-bit BGR image from a file; raises ``PhotoReadError`` naming the reason."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PhotoReadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    # imdecode instead of imread: imread cannot tell "missing" from "not an image" and
    # mishandles non-ASCII paths on some platforms.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise PhotoReadError(f"{path}: not an image OpenCV can decode")
    return image


# --- calibrate ---------------------------------------------------------------------------


def _pattern(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected COLSxROWS of inner corners, e.g. 9x6, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _toml_float(value: float) -> str:
    text = f"{value:.10g}"
    return text if any(c in text for c in ".en") else text + ".0"


def _toml_matrix(rows: Sequence[Sequence[float]]) -> str:
    return "[" + ", ".join("[" + ", ".join(_toml_float(v) for v in row) + "]" for row in rows) + "]"


def _toml_list(values: Sequence[float]) -> str:
    return "[" + ", ".join(_toml_float(v) for v in values) + "]"


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: str | None  # the value text as it was in the file; None = not set
    new: str


class ConfigEditError(Exception):
    """The config cannot be edited safely in place; the file is left as it was."""


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]#]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_\-.\s\"']+?)\s*=\s*(.*)$")


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def _value_depth(text: str) -> tuple[int, str]:
    """Bracket depth change of a value fragment and its trailing comment (strings skipped)."""
    depth, quote, i = 0, "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "#":
            return depth, text[i:]
        i += 1
    return depth, ""


@dataclass(frozen=True)
class _Statement:
    first: int  # line index
    last: int  # line index of the value's last line
    table: tuple[str, ...]
    key: tuple[str, ...]
    indent: str
    key_text: str
    value_text: str
    comment: str


def _statements(lines: list[str]) -> Iterator[_Statement | tuple[str, tuple[str, ...], int]]:
    """Key/value statements, and ("header", table, line) markers, in file order."""
    table: tuple[str, ...] = ()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        header = _HEADER.match(line) if stripped.startswith("[") else None
        if header:
            name = _split_key(header.group(2))
            # An array of tables holds many entries; mark it so no target ever matches it.
            table = name if header.group(1) == "[" else ("[[array]]", *name)
            yield ("header", table, i)
            i += 1
            continue
        key = _KEY.match(line) if stripped and not stripped.startswith("#") else None
        if key is None:
            i += 1
            continue
        indent, key_text, rest = key.group(1), key.group(2).strip(), key.group(3)
        depth, comment = _value_depth(rest)
        value_parts = [rest[: len(rest) - len(comment)] if comment else rest]
        last = i
        if '"""' in rest or "'''" in rest:
            raise ConfigEditError(f"line {i + 1}: multi-line strings are not supported by the in-place editor")
        while depth > 0 and last + 1 < len(lines):
            last += 1
            more, comment = _value_depth(lines[last])
            depth += more
            value_parts.append(lines[last][: len(lines[last]) - len(comment)] if comment else lines[last])
        yield _Statement(
            first=i,
            last=last,
            table=table,
            key=_split_key(key_text),
            indent=indent,
            key_text=key_text,
            value_text=" ".join(p.strip() for p in value_parts).strip(),
            comment=comment.strip() if last == i else "",
        )
        i = last + 1


def set_toml_values(text: str, table: str, values: dict[str, str]) -> tuple[str, list[ConfigChange]]:
    """Set ``values`` (key -> TOML value text) in ``[table]``, keeping everything else.

    An existing key is replaced where it stands (its trailing comment kept); a missing key
    is added at the end of the table's section, or a new section is appended. Raises
    ``ConfigEditError`` for layouts it will not touch (inline tables, multi-line strings).
    """
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    target = _split_key(table)
    changes: list[ConfigChange] = []
    for name, value in values.items():
        full = (*target, name)
        found: _Statement | None = None
        section_end: int | None = None  # last statement line of [table]
        header_line: int | None = None
        for item in _statements(lines):
            if isinstance(item, tuple):
                if item[1] == target:
                    header_line = item[2]
                    section_end = item[2]
                continue
            path = (*item.table, *item.key)
            if path == full:
                found = item
            elif full[: len(path)] == path:
                raise ConfigEditError(
                    f"line {item.first + 1}: '{item.key_text}' holds {'.'.join(full)} as an inline table; "
                    "move it to a [section] or edit it by hand"
                )
            if item.table == target and header_line is not None:
                section_end = item.last
        line = f"{name} = {value}"
        if found is not None:
            comment = f"  {found.comment}" if found.comment else ""
            lines[found.first : found.last + 1] = [f"{found.indent}{found.key_text} = {value}{comment}{newline}"]
            changes.append(ConfigChange(".".join(full), found.value_text, value))
        elif section_end is not None:
            lines.insert(section_end + 1, line + newline)
            changes.append(ConfigChange(".".join(full), None, value))
        else:
            if lines and not lines[-1].endswith(("\n", "\r")):
                lines[-1] += newline
            if lines and lines[-1].strip():
                lines.append(newline)
            lines.extend([f"[{table}]{newline}", line + newline])
            changes.append(ConfigChange(".".join(full), None, value))
    return "".join(lines), changes


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def update_config_file(path: Path, edits: dict[str, dict[str, str]]) -> list[ConfigChange]:
    """Apply ``{table: {key: value text}}`` to the TOML file at ``path``, atomically.

    The edited text must parse, carry exactly the intended values and pass the line config's
    validation before it replaces the file; otherwise ``ConfigEditError``/``ConfigError``
    is raised and the file is untouched.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigEditError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"{path}: not valid TOML before editing: {exc}") from exc
    changes: list[ConfigChange] = []
    for table, values in edits.items():
        text, more = set_toml_values(text, table, values)
        changes.extend(more)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"{path}: the edit would break the file ({exc}); edit it by hand") from exc
    for change in changes:
        expected = tomllib.loads(f"v = {change.new}")["v"]
        try:
            actual = _lookup(data, change.key)
        except (KeyError, TypeError) as exc:
            raise ConfigEditError(f"{path}: {change.key} did not land where expected; edit it by hand") from exc
        if actual != expected:
            raise ConfigEditError(f"{path}: {change.key} reads back as {actual!r}; edit it by hand")
    parse_config(data, str(path))  # raises ConfigError with the offending field
    # Write beside the original and rename over it: a crash never leaves half a config.
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(temp_name, path.stat().st_mode & 0o7777)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return changes


def _calibrate(args: argparse.Namespace) -> int:
    config: LineConfig | None = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            _error(str(exc))
            return EXIT_USAGE
    try:
        images = [read_photo(p) for p in args.images]
    except PhotoReadError as exc:
        _error(str(exc))
        return EXIT_USAGE
    result: dict[str, Any] = {"images": [str(p) for p in args.images]}
    edits: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    try:
        if args.disc_mm is not None:
            image = images[0]
            if len(images) > 1:
                notes.append("disc calibration uses the first image only")
            lens = config.camera.calibration if config is not None else None
            if lens is not None and lens.camera_matrix is not None and lens.dist_coeffs is not None:
                # The scale belongs to undistorted images, which is what the line measures.
                image = undistort(image, lens.camera_matrix, lens.dist_coeffs)
                notes.append("image undistorted with the config's lens calibration first")
            disc = calibrate_disc(image, args.disc_mm)
            result.update(
                method="disc",
                mm_per_px=disc.mm_per_px,
                disc_mm=disc.disc_mm,
                diameter_px=round(disc.diameter_px, 3),
                minor_diameter_px=round(disc.minor_diameter_px, 3),
                tilt_deg=round(disc.tilt_deg, 2),
            )
            if disc.tilt_deg > 10:
                notes.append(f"the disc looks tilted by {disc.tilt_deg:.0f} deg; lay it flat on the belt")
            edits["camera.geometry"] = {"mm_per_px": _toml_float(round(disc.mm_per_px, 6))}
        else:
            if args.square_mm is None:
                _error("--checkerboard needs --square-mm (the side of one printed square)")
                return EXIT_USAGE
            board = calibrate_checkerboard(images, args.checkerboard, args.square_mm)
            result.update(
                method="checkerboard",
                mm_per_px=board.mm_per_px,
                pattern=f"{board.pattern[0]}x{board.pattern[1]}",
                square_mm=board.square_mm,
                camera_matrix=[list(row) for row in board.camera_matrix],
                dist_coeffs=list(board.dist_coeffs),
                reprojection_error_px=round(board.reprojection_error_px, 4),
                spacing_spread=round(board.spacing_spread, 5),
                images_used=board.images_used,
            )
            if board.reprojection_error_px > 1.0:
                notes.append("reprojection error above 1 px: check focus, flatness of the board and the pattern size")
            if board.spacing_spread > 0.05:
                notes.append("corner spacing varies over 5 %: is the board tilted? lay it flat on the belt")
            edits["camera.geometry"] = {"mm_per_px": _toml_float(round(board.mm_per_px, 6))}
            edits["camera.calibration"] = {
                "camera_matrix": _toml_matrix(board.camera_matrix),
                "dist_coeffs": _toml_list(board.dist_coeffs),
            }
    except CalibrationError as exc:
        _error(f"{args.images[0]}: {exc}")
        return EXIT_SOME_FAILED
    height, width = images[0].shape[:2]
    result["image_size_px"] = [width, height]
    if config is not None and (config.camera.geometry.width_px, config.camera.geometry.height_px) != (width, height):
        notes.append(
            f"calibration image is {width}x{height} px but the config's camera is "
            f"{config.camera.geometry.width_px}x{config.camera.geometry.height_px} px: calibrate at the working resolution"
        )
    if args.config is not None:
        try:
            changes = update_config_file(Path(args.config), edits)
        except (ConfigEditError, ConfigError) as exc:
            _error(f"config not changed: {exc}")
            return EXIT_USAGE
        result["config"] = str(args.config)
        result["changes"] = [{"key": c.key, "old": c.old, "new": c.new} for c in changes]
    result["notes"] = notes
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return EXIT_OK
    print(f"method       {result['method']}")
    print(f"mm_per_px    {result['mm_per_px']:.6f}  ({1.0 / result['mm_per_px']:.3f} px per mm)")
    if result["method"] == "checkerboard":
        print(f"reprojection {result['reprojection_error_px']:.3f} px RMS over {result['images_used']} image(s)")
        print(f"dist_coeffs  {', '.join(f'{v:.5g}' for v in result['dist_coeffs'])}")
    else:
        print(f"disc         {result['diameter_px']:.2f} px across, tilt {result['tilt_deg']:.1f} deg")
    for change in result.get("changes", []):
        print(f"{result['config']}: {change['key']}: {change['old'] or '(not set)'} -> {change['new']}")
    for note in notes:
        print(f"note: {note}")
    return EXIT_OK


# --- measure -----------------------------------------------------------------------------


def _fruit_records(
    image: np.ndarray, mm_per_px: float, product: str, model: QualityModel | None
) -> list[dict[str, Any]]:
    """One record per fruit in a photo on a plain background."""
    masks = segment_fruits(image)
    # The belt pipeline subtracts a learned background. A plain photo background is one
    # colour, so an empty frame of that colour is its background; padding with it lets
    # fruit cut by a close crop stand free instead of being dropped at the frame edge.
    bg = background_bgr(image)
    height, width = image.shape[:2]
    pad = max(16, max(height, width) // 8)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=[int(v) for v in bg])
    pipeline = FramePipeline(VisionSettings(mm_per_px=mm_per_px, lanes=1, colour_classes=CANONICAL_CLASSES[product]))
    pipeline.learn_background([np.full_like(padded, bg)])
    views = pipeline.measure(padded)
    records = []
    for index, view in enumerate(sorted(views, key=lambda v: (v.x_px, v.y_px))):  # left to right
        x, y = view.x_px - pad, view.y_px - pad
        mask = _mask_at(masks, x, y)
        flags = set(view.flags)
        if mask is not None and _touches_edge(mask):
            flags.add("cut_by_image_edge")  # sizes are of the visible part only
        record: dict[str, Any] = {
            "fruit": index,
            "x_px": round(x, 1),
            "y_px": round(y, 1),
            "diameter_major_mm": round(view.diameter_major_mm, 2),
            "diameter_minor_mm": round(view.diameter_minor_mm, 2),
            "area_cm2": round(view.area_cm2, 3),
            "colour_fractions": {k: round(v, 4) for k, v in view.colour_fractions.items()},
            "defect_count": view.defect_count,
            "defect_area_cm2": round(view.defect_area_cm2, 4),
            "flags": sorted(flags),
        }
        if model is not None:
            if mask is None:
                record.update(quality_score=None, predicted_grade=None)
                record["flags"] = sorted(flags | {"no_quality_mask"})
            else:
                prediction = model.predict(image, mask)
                record.update(
                    quality_score=round(prediction.quality_score, 4), predicted_grade=prediction.predicted_grade
                )
        records.append(record)
    return records


def _mask_at(masks: list[np.ndarray], x: float, y: float) -> np.ndarray | None:
    height, width = masks[0].shape
    col, row = int(round(x)), int(round(y))
    if 0 <= row < height and 0 <= col < width:
        for mask in masks:
            if mask[row, col]:
                return mask
    return None


def _touches_edge(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _measure(args: argparse.Namespace) -> int:
    lens = None
    if args.mm_per_px is not None:
        mm_per_px, scale_source = args.mm_per_px, "--mm-per-px"
    elif args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            _error(str(exc))
            return EXIT_USAGE
        mm_per_px, scale_source = config.camera.geometry.mm_per_px, f"{args.config}"
        if config.camera.calibration.camera_matrix is not None and config.camera.calibration.dist_coeffs is not None:
            lens = config.camera.calibration
    else:
        mm_per_px, scale_source = load_config(None).camera.geometry.mm_per_px, "demo-default"
        _error(
            f"note: no --mm-per-px or --config given: sizes assume the demo line's {mm_per_px} mm/px "
            "and are not real millimetres for other photos"
        )
    model = None
    if args.model is not None:
        try:
            model = QualityModel.load(args.model)
        except QualityModelError as exc:
            _error(str(exc))
            return EXIT_USAGE
    failed = 0
    for path in args.images:
        try:
            image = read_photo(path)
        except PhotoReadError as exc:
            _error(str(exc))
            failed += 1
            continue
        if lens is not None and lens.camera_matrix is not None and lens.dist_coeffs is not None:
            image = undistort(image, lens.camera_matrix, lens.dist_coeffs)
        try:
            records = _fruit_records(image, mm_per_px, args.product, model)
        except NoFruitFound:
            records = []
        if not records:
            _error(f"note: {path}: no fruit found")
        for record in records:
            record = {"file": str(path), **record, "mm_per_px": mm_per_px, "scale_source": scale_source}
            if args.json:
                print(json.dumps(record, ensure_ascii=False))
            else:
                print(_measure_line(record))
    if failed:
        _error(f"{failed} of {len(args.images)} file(s) could not be read")
        return EXIT_SOME_FAILED
    return EXIT_OK


def _measure_line(record: dict[str, Any]) -> str:
    colours = " ".join(f"{k}={v:.0%}" for k, v in record["colour_fractions"].items())
    text = (
        f"{record['file']} #{record['fruit']}: {record['diameter_major_mm']:.1f} x {record['diameter_minor_mm']:.1f} mm, "
        f"{record['area_cm2']:.1f} cm2, {colours}, defects {record['defect_count']} "
        f"({record['defect_area_cm2']:.2f} cm2)"
    )
    if "quality_score" in record and record["quality_score"] is not None:
        text += f", quality {record['quality_score']:.2f} (grade {record['predicted_grade']})"
    if record["flags"]:
        text += f" [{', '.join(record['flags'])}]"
    return text


# --- labelled photos, train, bench -------------------------------------------------------


@dataclass(frozen=True)
class LabelledFeatures:
    paths: list[str]
    features: np.ndarray  # (n, len(FEATURE_NAMES))
    grades: np.ndarray
    problems: list[str]  # one message per photo left out
    feature_s: list[float]  # seconds per photo, for the bench


def read_labels(csv_path: Path, grade_column: str = "grade") -> list[tuple[str, float]]:
    """``(path, grade)`` rows of a label file; paths are relative to the file."""
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
                rows.append((str(csv_path.parent / row["path"]), grade))
    except OSError as exc:
        raise ValueError(f"{csv_path}: cannot read: {exc.strerror or exc}") from exc
    if not rows:
        raise ValueError(f"{csv_path}: no rows")
    return rows


def labelled_features(
    csv_path: Path, grade_column: str = "grade", clock: Callable[[], float] = time.perf_counter
) -> LabelledFeatures:
    """Features of every usable photo in a label file; unusable ones are listed, not fatal."""
    paths, rows, grades, problems, seconds = [], [], [], [], []
    for path, grade in read_labels(csv_path, grade_column):
        started = clock()
        try:
            image = read_photo(path)
            mask = segment_fruits(image)[0]
            features = extract_features(image, mask)
        except (PhotoReadError, NoFruitFound, ValueError) as exc:
            problems.append(f"{path}: {exc}" if not isinstance(exc, PhotoReadError) else str(exc))
            continue
        seconds.append(clock() - started)
        paths.append(path)
        rows.append(features)
        grades.append(grade)
    features_array = np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
    return LabelledFeatures(paths, features_array, np.array(grades), problems, seconds)


def _load_training_set(args: argparse.Namespace) -> LabelledFeatures | None:
    try:
        data = labelled_features(Path(args.labels), args.grade_column)
    except ValueError as exc:
        _error(str(exc))
        return None
    for problem in data.problems:
        _error(f"left out: {problem}")
    if len(np.unique(data.grades)) < 2 or len(data.grades) < 10:
        _error(f"need at least 10 usable photos over at least 2 grades, have {len(data.grades)}")
        return None
    return data


def _train(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    data = _load_training_set(args)
    if data is None:
        return EXIT_USAGE
    features_s = time.perf_counter() - started
    fit_started = time.perf_counter()
    model = QualityModel.fit(data.features, data.grades, ridge_lambda=args.ridge_lambda)
    fit_s = time.perf_counter() - fit_started
    counts = {f"{g:g}": int(c) for g, c in zip(*np.unique(data.grades, return_counts=True), strict=True)}
    folds = min(5, len(data.grades) // 2)
    estimate: dict[str, Any] = {}
    if folds >= 2:
        cv = cross_validate(data.features, data.grades, folds=folds, seed=0)
        estimate = {"cv_folds": folds, "cv_spearman": round(cv.mean_spearman, 4)}
    notes = {
        "variety": args.variety,
        "labels": str(args.labels),
        "photos": len(data.grades),
        "photos_left_out": len(data.problems),
        "grade_counts": counts,
        **estimate,
    }
    model = dataclasses.replace(model, notes=notes)
    try:
        model.save(args.out)
    except OSError as exc:
        _error(f"{args.out}: cannot write: {exc.strerror or exc}")
        return EXIT_USAGE
    summary = {
        "model": str(args.out),
        **notes,
        "ridge_lambda": model.ridge_lambda,
        "train_s": round(fit_s, 4),
        "features_s": round(features_s, 3),
        "in_sample_spearman": round(spearman(model.grade_value(data.features), data.grades), 4),
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"trained on {summary['photos']} photo(s) ({summary['photos_left_out']} left out) in "
              f"{features_s:.1f} s features + {fit_s * 1000:.0f} ms fit; wrote {args.out}")
        if estimate:
            print(f"expected rank agreement with staff on new photos (Spearman, {folds}-fold CV): "
                  f"{estimate['cv_spearman']:.2f}")
        strongest = sorted(zip(model.weights, model.feature_names, strict=True), key=lambda w: -abs(w[0]))[:5]
        print("strongest features (+ = worse grade): " + ", ".join(f"{n} {w:+.2f}" for w, n in strongest))
    return EXIT_OK


def _group_folds(paths: Sequence[str], pattern: str, folds: int, seed: int) -> list[np.ndarray]:
    """Folds that keep every photo of one group (e.g. one fruit over several days) together."""
    regex = re.compile(pattern)
    keys = []
    for path in paths:
        match = regex.search(Path(path).name)
        keys.append(match.group(1) if match and match.groups() else (match.group(0) if match else Path(path).name))
    groups = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[g]: k % folds for k, g in enumerate(order)}
    assignment = np.array([fold_of[k] for k in keys])
    return [np.flatnonzero(assignment == k) for k in range(folds)]


def _bench_quality(args: argparse.Namespace) -> int:
    data = _load_training_set(args)
    if data is None:
        return EXIT_USAGE
    fold_indices = _group_folds(data.paths, args.group_pattern, args.folds, args.seed) if args.group_pattern else None
    cv = cross_validate(data.features, data.grades, folds=args.folds, seed=args.seed, test_folds=fold_indices)
    # Baseline in the same run: the same model on mean colour alone (L*, a*, b*), which is
    # what a colour sorter sees; the gap is what gloss, texture and blemish features add.
    colour_only = [FEATURE_NAMES.index(n) for n in ("lab_l_mean", "lab_a_mean", "lab_b_mean")]
    baseline = cross_validate(
        data.features, data.grades, folds=args.folds, seed=args.seed, test_folds=fold_indices, columns=colour_only
    )
    result = {
        "bench": "quality",
        "labels": str(args.labels),
        "photos": int(len(data.grades)),
        "photos_left_out": len(data.problems),
        "folds": args.folds,
        "seed": args.seed,
        "protocol": f"grouped by /{args.group_pattern}/" if args.group_pattern else "stratified k-fold",
        "roc_auc_1_3_vs_8_10": round(cv.mean_roc_auc_1_3_vs_8_10, 4),
        "spearman": round(cv.mean_spearman, 4),
        "roc_auc_per_fold": [None if f.roc_auc_1_3_vs_8_10 is None else round(f.roc_auc_1_3_vs_8_10, 4) for f in cv.folds],
        "spearman_per_fold": [round(f.spearman, 4) for f in cv.folds],
        "pooled_roc_auc_1_3_vs_8_10": round(cv.pooled_roc_auc_1_3_vs_8_10, 4),
        "pooled_spearman": round(cv.pooled_spearman, 4),
        "ridge_lambda_per_fold": [f.ridge_lambda for f in cv.folds],
        "train_s_median": round(statistics.median(f.train_s for f in cv.folds), 5),
        "train_s_per_fold": [round(f.train_s, 5) for f in cv.folds],
        "features_ms_per_photo_median": round(1000 * statistics.median(data.feature_s), 2),
        "features_s_total": round(sum(data.feature_s), 3),
        "baseline_colour_only": {
            "roc_auc_1_3_vs_8_10": round(baseline.mean_roc_auc_1_3_vs_8_10, 4),
            "spearman": round(baseline.mean_spearman, 4),
        },
    }
    if not args.json:
        print(f"{result['photos']} photos, {args.folds} folds ({result['protocol']}, seed {args.seed})")
        for f in cv.folds:
            auc = "n/a" if f.roc_auc_1_3_vs_8_10 is None else f"{f.roc_auc_1_3_vs_8_10:.3f}"
            print(f"fold {f.fold}: train {f.train_count} test {f.test_count}  AUC(1-3 vs 8-10) {auc}  "
                  f"Spearman {f.spearman:.3f}  lambda {f.ridge_lambda:g}  fit {f.train_s * 1000:.1f} ms")
        print(f"mean: AUC {result['roc_auc_1_3_vs_8_10']:.3f}  Spearman {result['spearman']:.3f}   "
              f"(colour-only baseline: AUC {baseline.mean_roc_auc_1_3_vs_8_10:.3f}, "
              f"Spearman {baseline.mean_spearman:.3f})")
    print(json.dumps(result))
    return EXIT_OK


# --- registration ------------------------------------------------------------------------


def register(parsers: CliParsers) -> None:
    calibrate = parsers.vision.add_parser(
        "calibrate",
        help="mm per pixel (and lens undistortion) from an image of a checkerboard or a disc.",
        description="Measure the scale at the belt plane from a reference lying on the belt. A checkerboard "
        "also gives the lens model. With --config, the line config is updated in place.",
    )
    calibrate.add_argument("images", nargs="+", metavar="IMAGE", help="Image(s) of the reference; the first sets the scale.")
    reference = calibrate.add_mutually_exclusive_group(required=True)
    reference.add_argument("--checkerboard", type=_pattern, metavar="COLSxROWS", help="Inner corners, e.g. 9x6.")
    reference.add_argument("--disc-mm", type=float, metavar="MM", help="Diameter of a flat round reference.")
    calibrate.add_argument("--square-mm", type=float, metavar="MM", help="Side of one checkerboard square.")
    calibrate.add_argument("--config", metavar="FILE", help="Line config TOML to update in place.")
    calibrate.add_argument("--json", action="store_true", help="Print one JSON object.")
    calibrate.set_defaults(func=_calibrate)

    measure = parsers.vision.add_parser(
        "measure",
        help="Measure each fruit in photos on a plain background.",
        description="One record per fruit found: size, colour fractions, defects, flags and, with --model, "
        "quality_score (0 best .. 1 worst) and predicted_grade. Without --mm-per-px or --config, sizes "
        "assume the demo line's scale (0.8 mm/px) and are marked scale_source=demo-default.",
    )
    measure.add_argument("images", nargs="+", metavar="IMAGE")
    measure.add_argument("--mm-per-px", type=float, metavar="X", help="Scale of the photos.")
    measure.add_argument("--config", metavar="FILE", help="Take scale and lens calibration from this line config.")
    measure.add_argument("--model", metavar="MODEL", help="Quality model JSON from 'gradeline vision train'.")
    measure.add_argument(
        "--product", default="apple", choices=("apple", "mango", "pomegranate", "cherry"),
        help="Colour classes to report (default apple: red / yellow / green).",
    )
    measure.add_argument("--json", action="store_true", help="One JSON object per fruit, one per line.")
    measure.set_defaults(func=_measure)

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
        "--group-pattern", metavar="REGEX", default=None,
        help="Keep photos whose file names share this regex's first group in one fold "
        "(e.g. the same fruit photographed on several days).",
    )
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench_quality)


def _labels_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", required=True, metavar="CSV", help="CSV with columns path,grade.")
    parser.add_argument("--grade-column", default="grade", help="Name of the grade column (default grade).")
