"""``gradeline vision calibrate|measure`` (and, through ``api.cli.vision_teach``, ``vision
train`` and ``bench quality``).

Owns the file side of the vision tools: reading photos, printing results, and writing
calibration results into the line's TOML config in place (keeping the user's comments and
layout by tomlkit, then re-validating with ``api.config``). The image work itself is in
``vision.calibration``, ``vision.photo``, ``vision.pipeline`` and ``vision.quality``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tomlkit
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import InlineTable, Item, Table

from api.cli import CliParsers
from api.config import ConfigError, LineConfig, load_config, parse_config
from vision.calibration import CalibrationError, calibrate_checkerboard, calibrate_disc, undistort
from vision.colour import CANONICAL_CLASSES
from vision.photo import (
    NoFruitFound,
    NoReferenceFound,
    PhotoScale,
    background_bgr,
    checkerboard_scale,
    disc_scale,
    find_photo_fruit,
    without_reference,
)
from vision.pipeline import FramePipeline, VisionSettings
from vision.quality import QualityModel, QualityModelError

PROG = "gradeline vision"
# Exit codes: 0 done, 1 some inputs failed (the rest were processed), 2 unusable request.
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def print_error(message: str) -> None:
    """One line on stderr, named for the tool, as every vision command reports."""
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


def _toml_number(value: float) -> float:
    """Ten significant digits: more than any calibration knows, fewer than float noise."""
    return float(f"{value:.10g}")


TomlValue = float | list[float] | list[list[float]]


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: str | None  # the value as it was written in the file; None = not set
    new: str


class ConfigEditError(Exception):
    """The config cannot be edited safely in place; the file is left as it was."""


def _section(document: tomlkit.TOMLDocument, table: str) -> Table | OutOfOrderTableProxy:
    """The table ``table`` (dotted) of the document, created at the end when missing.

    Only standard tables are walked: an inline table (``camera = { ... }``) or an array of
    tables would have to be rewritten in another layout, which is the user's call."""
    node: Any = document
    path: list[str] = []
    for part in table.split("."):
        path.append(part)
        child = node.get(part)
        if child is None:
            # a new [a.b] header at the end; parents that do not exist yet are implicit
            child = tomlkit.table(is_super_table=len(path) < len(table.split(".")))
            node[part] = child
        elif isinstance(child, InlineTable):
            raise ConfigEditError(
                f"'{'.'.join(path)}' is an inline table; move it to a [{'.'.join(path)}] section or edit it by hand"
            )
        elif not isinstance(child, Table | OutOfOrderTableProxy):  # the proxy: [a.b] ... [c] ... [a.d]
            raise ConfigEditError(f"'{'.'.join(path)}' is not a table ({type(child).__name__}); edit it by hand")
        node = child
    return node


def set_toml_values(text: str, table: str, values: dict[str, TomlValue]) -> tuple[str, list[ConfigChange]]:
    """Set ``values`` in ``[table]``, keeping every comment and the layout (tomlkit).

    An existing key is replaced where it stands, its trailing comment kept; a missing key
    is added at the end of its table, a missing table at the end of the file. Raises
    ``ConfigEditError`` for layouts it will not touch (inline tables, arrays of tables) and
    for text that is not TOML.
    """
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigEditError(f"not valid TOML: {exc}") from exc
    section = _section(document, table)
    changes: list[ConfigChange] = []
    for name, value in values.items():
        new = tomlkit.item(value)
        old = section.get(name)
        if isinstance(old, Item):
            # keep the user's remark on the line
            new.trivia.comment, new.trivia.comment_ws = old.trivia.comment, old.trivia.comment_ws
        section[name] = new
        changes.append(ConfigChange(f"{table}.{name}", None if old is None else old.as_string().strip(), new.as_string()))
    return tomlkit.dumps(document), changes


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def update_config_file(path: Path, edits: dict[str, dict[str, TomlValue]]) -> list[ConfigChange]:
    """Apply ``{table: {key: value}}`` to the TOML file at ``path``, atomically.

    The edited text must parse, carry exactly the intended values and pass the line config's
    validation before it replaces the file; otherwise ``ConfigEditError``/``ConfigError``
    is raised and the file is untouched.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigEditError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    changes: list[ConfigChange] = []
    try:
        for table, values in edits.items():
            text, more = set_toml_values(text, table, values)
            changes.extend(more)
    except ConfigEditError as exc:
        raise ConfigEditError(f"{path}: {exc}") from exc
    # read back with the standard library's parser, not the editor's own
    data = tomllib.loads(text)
    for table, values in edits.items():
        for name, value in values.items():
            if _lookup(data, f"{table}.{name}") != value:
                raise ConfigEditError(f"{path}: {table}.{name} did not read back as written; edit it by hand")
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
            print_error(str(exc))
            return EXIT_USAGE
    try:
        images = [read_photo(p) for p in args.images]
    except PhotoReadError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    result: dict[str, Any] = {"images": [str(p) for p in args.images]}
    edits: dict[str, dict[str, TomlValue]] = {}
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
            edits["camera.geometry"] = {"mm_per_px": round(disc.mm_per_px, 6)}
        else:
            if args.square_mm is None:
                print_error("--checkerboard needs --square-mm (the side of one printed square)")
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
            edits["camera.geometry"] = {"mm_per_px": round(board.mm_per_px, 6)}
            edits["camera.calibration"] = {
                "camera_matrix": [[_toml_number(v) for v in row] for row in board.camera_matrix],
                "dist_coeffs": [_toml_number(v) for v in board.dist_coeffs],
            }
    except CalibrationError as exc:
        print_error(f"{args.images[0]}: {exc}")
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
            print_error(f"config not changed: {exc}")
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


def _plain_stand_in(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo with everything but the fruit replaced by one plain colour, and that colour:
    the belt pipeline then sees the fruit as on a plain background. The colour is the one of
    white, black, mid grey and blue farthest from the fruit's median."""
    fruit_bgr = np.median(image[mask > 0], axis=0)
    candidates = np.array([[255, 255, 255], [0, 0, 0], [128, 128, 128], [200, 60, 20]], np.float64)
    plain = candidates[int(np.argmax(np.abs(candidates - fruit_bgr).max(axis=1)))].astype(np.uint8)
    stand_in = np.where((mask > 0)[..., None], image, plain)
    return np.ascontiguousarray(stand_in, dtype=np.uint8), plain


def _fruit_records(
    image: np.ndarray, mm_per_px: float, product: str, model: QualityModel | None
) -> list[dict[str, Any]]:
    """One record per fruit in a photo (``vision.photo.find_photo_fruit``)."""
    found = find_photo_fruit(image)
    masks = [found.mask, *found.others]
    if found.method == "plain-background":
        bg = background_bgr(image)
        plain_image = image
    else:
        plain_image, bg = _plain_stand_in(image, found.mask)
    # The belt pipeline subtracts a learned background. A plain photo background is one
    # colour, so an empty frame of that colour is its background; padding with it lets
    # fruit cut by a close crop stand free instead of being dropped at the frame edge.
    height, width = image.shape[:2]
    pad = max(16, max(height, width) // 8)
    padded = cv2.copyMakeBorder(plain_image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=[int(v) for v in bg])
    pipeline = FramePipeline(VisionSettings(mm_per_px=mm_per_px, lanes=1, colour_classes=CANONICAL_CLASSES[product]))
    pipeline.learn_background([np.full_like(padded, bg)])
    views = pipeline.measure(padded)
    records = []
    for index, view in enumerate(sorted(views, key=lambda v: (v.x_px, v.y_px))):  # left to right
        x, y = view.x_px - pad, view.y_px - pad
        mask = _mask_at(masks, x, y)
        if mask is None and found.method != "plain-background":
            continue  # a speck of the stand-in's edge, not the fruit found
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
            "segmentation": found.method,
        }
        if model is not None:
            if mask is None:
                record.update(quality_score=None, predicted_grade=None)
                record["flags"] = sorted(flags | {"no_quality_mask"})
            else:
                assessment = model.assess(image, mask)
                record.update(
                    quality_score=round(assessment.quality_score, 4),
                    predicted_grade=assessment.predicted_grade,
                    quality_distance=round(assessment.distance, 2),
                )
                if assessment.out_of_distribution:
                    # unlike every training photo: the score is given, no grade is claimed
                    record["flags"] = sorted(flags | {"quality_out_of_distribution"})
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


def _reference(text: str) -> Callable[[np.ndarray], PhotoScale]:
    """``checkerboard:COLSxROWS:SQUARE_MM`` or ``disc:DIAMETER_MM`` -> the scale finder."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "checkerboard":
            pattern, _, square = rest.partition(":")
            cols_rows, square_mm = _pattern(pattern), float(square)
            if square_mm > 0:
                return lambda image: checkerboard_scale(image, cols_rows, square_mm)
        elif kind == "disc" and float(rest) > 0:
            disc_mm = float(rest)
            return lambda image: disc_scale(image, disc_mm)
    except (ValueError, argparse.ArgumentTypeError):
        pass
    raise argparse.ArgumentTypeError(
        f"expected checkerboard:COLSxROWS:SQUARE_MM (inner corners, e.g. checkerboard:7x5:10) or disc:DIAMETER_MM, got {text!r}"
    )


def _measure(args: argparse.Namespace) -> int:
    lens = None
    if args.reference is not None:
        mm_per_px, scale_source = 0.0, "reference"  # per photo, below
    elif args.mm_per_px is not None:
        mm_per_px, scale_source = args.mm_per_px, "--mm-per-px"
    elif args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print_error(str(exc))
            return EXIT_USAGE
        mm_per_px, scale_source = config.camera.geometry.mm_per_px, f"{args.config}"
        if config.camera.calibration.camera_matrix is not None and config.camera.calibration.dist_coeffs is not None:
            lens = config.camera.calibration
    else:
        mm_per_px, scale_source = load_config(None).camera.geometry.mm_per_px, "demo-default"
        print_error(
            f"note: no --mm-per-px or --config given: sizes assume the demo line's {mm_per_px} mm/px "
            "and are not real millimetres for other photos"
        )
    model = None
    if args.model is not None:
        try:
            model = QualityModel.load(args.model)
        except QualityModelError as exc:
            print_error(str(exc))
            return EXIT_USAGE
    failed = usable = 0
    for path in args.images:
        try:
            image = read_photo(path)
        except PhotoReadError as exc:
            print_error(str(exc))
            failed += 1
            continue
        if lens is not None and lens.camera_matrix is not None and lens.dist_coeffs is not None:
            image = undistort(image, lens.camera_matrix, lens.dist_coeffs)
        if args.reference is not None:
            try:
                scale = args.reference(image)
            except NoReferenceFound as exc:
                print_error(f"note: {path}: not measured, the reference was not found: {exc}")
                continue
            image, mm_per_px, scale_source = without_reference(image, scale), scale.mm_per_px, scale.source
        try:
            records = _fruit_records(image, mm_per_px, args.product, model)
        except NoFruitFound as exc:
            print_error(f"note: {path}: no fruit measured: {exc}")
            records = []
        usable += bool(records)
        for record in records:
            record = {"file": str(path), **record, "mm_per_px": mm_per_px, "scale_source": scale_source}
            if args.json:
                print(json.dumps(record, ensure_ascii=False))
            else:
                print(_measure_line(record))
    print_error(f"note: {usable} of {len(args.images)} photo(s) usable (a fruit found and measured)")
    if failed:
        print_error(f"{failed} of {len(args.images)} file(s) could not be read")
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
        help="Measure each fruit in photos (plain or cluttered background; scale from a reference in view).",
        description="One record per fruit found: size, colour fractions, defects, flags and, with --model, "
        "quality_score (0 best .. 1 worst) and predicted_grade. Without --mm-per-px or --config, sizes "
        "assume the demo line's scale (0.8 mm/px) and are marked scale_source=demo-default.",
    )
    measure.add_argument("images", nargs="+", metavar="IMAGE")
    measure.add_argument("--mm-per-px", type=float, metavar="X", help="Scale of the photos.")
    measure.add_argument("--config", metavar="FILE", help="Take scale and lens calibration from this line config.")
    measure.add_argument(
        "--reference", type=_reference, metavar="REF",
        help="Take each photo's scale from a reference lying in it, found automatically: "
        "checkerboard:COLSxROWS:SQUARE_MM (a printed board; inner corners) or disc:DIAMETER_MM (a flat, evenly "
        "coloured disc beside the fruit). Overrides --mm-per-px and --config's scale.",
    )
    measure.add_argument("--model", metavar="MODEL", help="Quality model JSON from 'gradeline vision train'.")
    measure.add_argument(
        "--product", default="apple", choices=("apple", "mango", "pomegranate", "cherry"),
        help="Colour classes to report (default apple: red / yellow / green).",
    )
    measure.add_argument("--json", action="store_true", help="One JSON object per fruit, one per line.")
    measure.set_defaults(func=_measure)

    from api.cli import vision_teach  # train and bench quality; it imports this module

    vision_teach.register(parsers)
