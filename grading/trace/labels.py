"""Carton and pallet labels: one raster for the PNG and PDF previews, and a ZPL job for label printers.

Owns the label's content and layout (100 x 150 mm at 8 dots/mm, 203 dpi): the Chinese text
(product, quality class, size, origin, grower under the privacy setting, pack date, net weight,
fruit count, lot, the platform 追溯码 when the lot has one), the Digital Link QR (segno), the GS1
DataMatrix of the element string (zint) with its HRI, and the 承诺达标合格证 block.

ZPL: the text, boxes and HRI are one ``^GFA`` graphic field cut from the same raster as the
preview (so Chinese prints on any ZPL printer without a downloaded CJK font), while the QR
(``^BQ``) and the GS1 DataMatrix (``^BX``, FNC1 written with the escape character) are native
printer symbols, sharper than a bitmap. ``^CI28`` declares UTF-8 for the field data.

The pallet (SSCC) label, same size: the packing center, carton count, total net weight, the
products and classes on it, its grower lots, ship date and destination once shipped, and the
GS1-128 of (00) SSCC with its HRI below. It shares the raster, graphic field and ZPL job with
the carton label; the GS1-128 is native too (``^BC``, ``>;>8``: Code C with FNC1 first).

Not owned: where the label data comes from (the merge maps cartons onto ``CartonLabel``,
``grading.trace.pallets`` pallets onto ``PalletLabel``) and sending the job (``drivers.printer``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

import numpy as np
import segno
import zint
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from grading.trace.codes import CartonCode, PrivacyLevel, TraceConfig, carton_code, present_grower
from grading.trace.gs1 import GS

DOTS_PER_MM = 8
WIDTH_DOTS = 100 * DOTS_PER_MM
HEIGHT_DOTS = 150 * DOTS_PER_MM
MARGIN = 24
QR_MODULE_DOTS = 6
DM_MODULE_DOTS = 6
_DM_ESCAPE = "`"  # ZPL ^BX escape character: not in GS1 CSET 82, so no lot or serial contains it

# Debian packages fonts-wqy-microhei (scripts/install-system-deps.sh) and fonts-noto-cjk
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)

# 《农产品质量安全承诺达标合格证管理办法》 (2025): the producer's promise printed on the certificate
PROMISE_LINES = (
    "我承诺对销售的食用农产品:",
    "不使用禁用农药兽药、停用兽药和非法添加物;",
    "常规农药兽药残留不超标;",
    "对承诺的真实性负责。",
)


class LabelError(Exception):
    """A label cannot be drawn (no CJK font, a code that does not fit)."""


@dataclass(frozen=True)
class ComplianceCertificate:
    """承诺达标合格证 as the packing center issues it for a carton (fields of the 2025 Measures)."""

    product_name: str  # 产品名称
    quantity: str  # 数量 (weight and/or count, as printed)
    origin: str  # 产地
    issuer: str  # 承诺主体 (name)
    contact: str  # 联系方式
    issued_at: datetime  # 开具时间
    lots: tuple[str, ...] = ()  # the grower lots the carton's fruit came from (mixed lots: several)
    # the packing center's own certificate number (center_certificates): mixed lots only; a
    # single-lot carton's block is the center's promise for that lot and carries none
    number: str | None = None


@dataclass(frozen=True)
class CartonLabel:
    """Everything printed on one carton's label; the merge fills it from a carton and its lot."""

    code: CartonCode
    digital_link: str
    product: str  # 沃柑
    quality_class: str  # 特级 / 一级 / 二级
    size_class: str
    origin: str
    grower: str | None
    grower_privacy: PrivacyLevel
    certificate: ComplianceCertificate
    fruit_count: int | None = None
    platform_trace_code: str | None = None  # 追溯码 issued by the national platform, opaque
    packing_center: str = ""

    @property
    def pack_date(self) -> date:
        return self.code.pack_date

    @property
    def net_weight_g(self) -> int:
        return self.code.net_weight_g


def carton_label(
    config: TraceConfig, *, product: str, quality_class: str, size_class: str, lot: str, serial: int | str,
    pack_date: date, net_weight_g: int, certificate: ComplianceCertificate, fruit_count: int | None = None,
    grower: str | None = None, origin: str | None = None, platform_trace_code: str | None = None,
    packing_center: str = "",
) -> CartonLabel:
    """A carton's label from the line's ``[trace]`` config: the GTIN of its product, class and
    size, its Digital Link on the configured resolver, the configured origin and privacy."""
    code = carton_code(
        gtin=config.gtin_for(product, quality_class, size_class), lot=lot, serial=serial,
        pack_date=pack_date, net_weight_g=net_weight_g,
    )
    return CartonLabel(
        code=code, digital_link=code.digital_link(config.digital_link_base), product=product,
        quality_class=quality_class, size_class=size_class, origin=origin if origin is not None else config.origin,
        grower=grower, grower_privacy=config.grower_privacy, certificate=certificate, fruit_count=fruit_count,
        platform_trace_code=platform_trace_code, packing_center=packing_center,
    )


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class RenderedLabel:
    """The label drawn: the whole raster (PNG/PDF), the ZPL job, and where each symbol is
    (``qr``, ``datamatrix``, ``gs1_128``): the ZPL draws those natively, outside the graphic field."""

    image: Image.Image  # mode "1", WIDTH_DOTS x HEIGHT_DOTS
    zpl: str
    boxes: Mapping[str, Box]
    notes: Sequence[str] = field(default_factory=tuple)

    @property
    def qr_box(self) -> Box:
        return self.boxes["qr"]

    @property
    def datamatrix_box(self) -> Box:
        return self.boxes["datamatrix"]

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", dpi=(203, 203))
        return buffer.getvalue()

    def pdf(self) -> bytes:
        buffer = io.BytesIO()
        self.image.convert("L").save(buffer, format="PDF", resolution=203.2)
        return buffer.getvalue()


@cache
def _font_path() -> Path:
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    raise LabelError(f"no CJK font found (tried {', '.join(map(str, FONT_CANDIDATES))}); run scripts/install-system-deps.sh")


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_font_path()), size)


def qr_modules(uri: str) -> NDArray[np.bool_]:
    """The Digital Link QR (plain URL, no FNC1: scanners report ]Q1), error correction M."""
    qr = segno.make(uri, error="m", micro=False, boost_error=False)
    return np.array([[bool(v) for v in row] for row in qr.matrix], dtype=bool)


def datamatrix_modules(bracketed_elements: str) -> NDArray[np.bool_]:
    """GS1 DataMatrix (FNC1 first) of the element string given as ``[01]...[10]...``."""
    symbol = zint.Symbol()
    symbol.symbology = zint.Symbology.DATAMATRIX
    symbol.input_mode = zint.InputMode.GS1
    symbol.scale = 0.5  # one pixel per module
    symbol.encode(bracketed_elements)
    symbol.buffer()
    return np.asarray(symbol.bitmap)[..., 0] == 0


def _paste_modules(
    canvas: Image.Image, modules: NDArray[np.bool_], x: int, y: int, dots: int, quiet: int
) -> tuple[int, int, int, int]:
    """Draw ``modules`` with a quiet zone of ``quiet`` modules; the box it takes."""
    big = np.kron(modules, np.ones((dots, dots), dtype=bool))
    tile = Image.fromarray(np.where(big, 0, 255).astype(np.uint8)).convert("1")
    canvas.paste(tile, (x + quiet * dots, y + quiet * dots))
    return (x, y, x + (modules.shape[1] + 2 * quiet) * dots, y + (modules.shape[0] + 2 * quiet) * dots)


def _kg(grams: int) -> str:
    return f"{grams / 1000:.3f}".rstrip("0").rstrip(".") + " kg"


def _hri_lines(code: CartonCode, width: int) -> list[str]:
    """The HRI broken between elements, never inside one."""
    lines = [""]
    for element in code.elements_in_order():
        piece = f"({element.ai}){element.value}"
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return lines


def _text_layer(label: CartonLabel) -> tuple[Image.Image, tuple[int, int], tuple[int, int], int]:
    """Text and boxes; returns the layer and where the QR and DataMatrix go, and the QR size."""
    image = Image.new("1", (WIDTH_DOTS, HEIGHT_DOTS), 1)
    draw = ImageDraw.Draw(image)
    qr_size = (qr_modules(label.digital_link).shape[0] + 8) * QR_MODULE_DOTS
    qr_at = (WIDTH_DOTS - MARGIN - qr_size, MARGIN)
    draw.text((MARGIN, MARGIN), label.product, font=_font(72), fill=0)
    draw.text((MARGIN, MARGIN + 92), f"{label.quality_class}  {label.size_class}", font=_font(56), fill=0)
    y = MARGIN + 180
    grower = present_grower(label.grower, label.grower_privacy)
    rows = [
        ("产地", label.origin),
        *([("种植者", grower)] if grower else []),
        ("包装日期", label.pack_date.isoformat()),
        ("净含量", _kg(label.net_weight_g)),
        *([("数量", f"{label.fruit_count} 个")] if label.fruit_count is not None else []),
        ("批次", label.code.lot),
        ("序号", label.code.serial),
    ]
    for name, value in rows:
        draw.text((MARGIN, y), f"{name}: {value}", font=_font(32), fill=0)
        y += 40
    draw.text((qr_at[0] + 40, qr_at[1] + qr_size), "扫码查询产品信息", font=_font(24), fill=0)
    y = max(y, qr_at[1] + qr_size + 36) + 12
    if label.platform_trace_code:
        draw.text((MARGIN, y), f"追溯码: {label.platform_trace_code}", font=_font(32), fill=0)
        y += 48
    dm_at = (MARGIN, y)
    dm_size = (datamatrix_modules(label.code.bracketed()).shape[0] + 4) * DM_MODULE_DOTS
    for row, line in enumerate(_hri_lines(label.code, 34)):
        draw.text((MARGIN + dm_size + 16, y + 16 + 30 * row), line, font=_font(22), fill=0)
    if label.packing_center:
        draw.text((MARGIN + dm_size + 16, y + 120), label.packing_center, font=_font(26), fill=0)
    y += dm_size + 16
    # 承诺达标合格证 block
    cert = label.certificate
    top = y
    draw.rectangle((MARGIN, top, WIDTH_DOTS - MARGIN, HEIGHT_DOTS - MARGIN), outline=0, width=4)
    title = "承诺达标合格证"
    width = draw.textlength(title, font=_font(48))
    draw.text(((WIDTH_DOTS - width) / 2, top + 12), title, font=_font(48), fill=0)
    y = top + 76
    fields = [
        ("产品名称", cert.product_name), ("数量", cert.quantity), ("产地", cert.origin),
        ("承诺主体", cert.issuer), ("联系方式", cert.contact),
        ("开具时间", cert.issued_at.strftime("%Y-%m-%d %H:%M")),
    ]
    if cert.lots:
        fields.append(("来源批次", "、".join(cert.lots)))
    if cert.number:
        fields.append(("合格证编号", cert.number))
    for name, value in fields:
        draw.text((MARGIN + 16, y), f"{name}: {value}", font=_font(28), fill=0)
        y += 34
    for line in PROMISE_LINES:
        draw.text((MARGIN + 16, y), line, font=_font(24), fill=0)
        y += 28
    if y > HEIGHT_DOTS - MARGIN:
        raise LabelError(f"label content runs {y - HEIGHT_DOTS + MARGIN} dots past the bottom")
    return image, qr_at, dm_at, qr_size


def _graphic_field(image: Image.Image) -> str:
    """``^GFA`` of a mode-"1" image: 1 bits print black, rows padded to whole bytes."""
    black = ~np.asarray(image.convert("L")).astype(bool)
    packed = np.packbits(black, axis=1)
    total = packed.size
    return f"^GFA,{total},{total},{packed.shape[1]},{packed.tobytes().hex().upper()}"


def _zpl_datamatrix(code: CartonCode) -> str:
    return _DM_ESCAPE + "1" + code.element_string().replace(GS, _DM_ESCAPE + "1")


def _zpl_job(layer: Image.Image, symbols: Sequence[str]) -> str:
    """One label's ZPL: the text layer as a graphic field, then the native symbols."""
    return "".join([
        "^XA^CI28",
        f"^PW{WIDTH_DOTS}^LL{HEIGHT_DOTS}^LH0,0",
        f"^FO0,0{_graphic_field(layer)}^FS",
        *symbols,
        "^PQ1^XZ\n",
    ])


def render(label: CartonLabel) -> RenderedLabel:
    layer, qr_at, dm_at, _qr_size = _text_layer(label)
    image = layer.copy()
    qr_box = _paste_modules(image, qr_modules(label.digital_link), *qr_at, QR_MODULE_DOTS, quiet=4)
    dm = datamatrix_modules(label.code.bracketed())
    dm_box = _paste_modules(image, dm, *dm_at, DM_MODULE_DOTS, quiet=2)
    zpl = _zpl_job(layer, [
        # ^BQN,2,<magnification>: model 2; "MA," = error correction M, automatic data mode
        f"^FO{qr_box[0] + 4 * QR_MODULE_DOTS},{qr_box[1] + 4 * QR_MODULE_DOTS}^BQN,2,{QR_MODULE_DOTS}"
        f"^FDMA,{label.digital_link}^FS",
        # ^BX: ECC 200, module height, escape character for FNC1 (`1)
        f"^FO{dm_box[0] + 2 * DM_MODULE_DOTS},{dm_box[1] + 2 * DM_MODULE_DOTS}"
        f"^BXN,{DM_MODULE_DOTS},200,0,0,1,{_DM_ESCAPE}^FD{_zpl_datamatrix(label.code)}^FS",
    ])
    return RenderedLabel(image=image, zpl=zpl, boxes={"qr": qr_box, "datamatrix": dm_box})


# --- pallet (SSCC) label ----------------------------------------------------------------------

GS1_128_MODULE_DOTS = 4  # X = 0.5 mm, inside GS1's range for logistic labels (0.495-1.016 mm)
GS1_128_HEIGHT_DOTS = 256  # 32 mm: GS1 asks at least 31.75 mm for a logistic label's bars
GS1_128_QUIET_MODULES = 10


@dataclass(frozen=True)
class PalletLabel:
    """Everything printed on a pallet's SSCC label; ``grading.trace.pallets`` fills it."""

    sscc: str
    packing_center: str
    carton_count: int
    net_weight_g: int
    contents: tuple[str, ...]  # one line per product / class / size: "沃柑 特级 L × 12 箱"
    lots: tuple[str, ...]
    created_at: datetime
    shipped_at: datetime | None = None
    destination: str | None = None
    certificate_number: str | None = None  # the center's 合格证 of a pallet of mixed lots (issued at shipping)

    @property
    def hri(self) -> str:
        return f"(00){self.sscc}"


def gs1_128_modules(bracketed_elements: str) -> NDArray[np.bool_]:
    """One row of GS1-128 bars (FNC1 after the start character) for ``[00]...``."""
    symbol = zint.Symbol()
    symbol.symbology = zint.Symbology.GS1_128
    symbol.input_mode = zint.InputMode.GS1
    symbol.scale = 0.5  # one pixel per module
    symbol.show_text = False
    symbol.encode(bracketed_elements)
    symbol.buffer()
    return np.asarray(symbol.bitmap)[0, :, 0] == 0


def _wrapped(text: str, per_line: int) -> list[str]:
    return [text[i : i + per_line] for i in range(0, len(text), per_line)] or [""]


def _pallet_layer(label: PalletLabel) -> tuple[Image.Image, tuple[int, int], list[str]]:
    """Text and boxes of a pallet label; where the GS1-128 goes; what was left out."""
    image = Image.new("1", (WIDTH_DOTS, HEIGHT_DOTS), 1)
    draw = ImageDraw.Draw(image)
    notes: list[str] = []
    bars_width = (len(gs1_128_modules(f"[00]{label.sscc}")) + 2 * GS1_128_QUIET_MODULES) * GS1_128_MODULE_DOTS
    bars_at = ((WIDTH_DOTS - bars_width) // 2, HEIGHT_DOTS - MARGIN - 56 - GS1_128_HEIGHT_DOTS)
    bottom = bars_at[1] - 24  # the text stops above the bars
    draw.text((MARGIN, MARGIN), label.packing_center or "托盘标签", font=_font(44), fill=0)
    draw.text((MARGIN, MARGIN + 60), "托盘 SSCC", font=_font(64), fill=0)
    draw.line((MARGIN, MARGIN + 148, WIDTH_DOTS - MARGIN, MARGIN + 148), fill=0, width=4)
    rows = [
        ("箱数", f"{label.carton_count} 箱"),
        ("净重合计", _kg(label.net_weight_g)),
        ("组托日期", label.created_at.strftime("%Y-%m-%d")),
        *([("发货日期", label.shipped_at.strftime("%Y-%m-%d"))] if label.shipped_at else []),
        *([("目的地", label.destination)] if label.destination else []),
        *([("承诺达标合格证", label.certificate_number)] if label.certificate_number else []),
    ]
    y = MARGIN + 168
    for name, value in rows:
        draw.text((MARGIN, y), f"{name}: {value}", font=_font(36), fill=0)
        y += 46
    lines = ["品名 / 等级 / 规格:", *(f"  {c}" for c in label.contents)]
    lines += ["来源批次:", *(f"  {part}" for part in _wrapped("、".join(label.lots), 30))]
    for number, line in enumerate(lines):
        if y + 40 > bottom:
            notes.append(f"{len(lines) - number} lines of contents and lots left out (no room)")
            break
        draw.text((MARGIN, y), line, font=_font(30), fill=0)
        y += 38
    hri_width = draw.textlength(label.hri, font=_font(40))
    draw.text(((WIDTH_DOTS - hri_width) / 2, bars_at[1] + GS1_128_HEIGHT_DOTS + 8), label.hri, font=_font(40), fill=0)
    return image, bars_at, notes


def render_pallet(label: PalletLabel) -> RenderedLabel:
    layer, (x, y), notes = _pallet_layer(label)
    image = layer.copy()
    bars = gs1_128_modules(f"[00]{label.sscc}")
    column = np.repeat(bars, GS1_128_MODULE_DOTS)
    tile = Image.fromarray(np.where(np.tile(column, (GS1_128_HEIGHT_DOTS, 1)), 0, 255).astype(np.uint8)).convert("1")
    left = x + GS1_128_QUIET_MODULES * GS1_128_MODULE_DOTS
    image.paste(tile, (left, y))
    box = (x, y, x + tile.width + 2 * GS1_128_QUIET_MODULES * GS1_128_MODULE_DOTS, y + GS1_128_HEIGHT_DOTS)
    zpl = _zpl_job(layer, [
        # ^BY module width; ^BC height, no printer HRI (the raster has it); >; Code C, >8 FNC1
        f"^BY{GS1_128_MODULE_DOTS}^FO{left},{y}^BCN,{GS1_128_HEIGHT_DOTS},N,N,N^FD>;>800{label.sscc}^FS",
    ])
    return RenderedLabel(image=image, zpl=zpl, boxes={"gs1_128": box}, notes=tuple(notes))
