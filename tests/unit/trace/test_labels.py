"""Labels read back by independent decoders: zbar (zbarimg) for the Digital Link QR, zxing-cpp
for the GS1 DataMatrix; the ZPL job carries the same data and its graphic field is the preview's
text layer."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from grading.trace.codes import PrivacyLevel
from grading.trace.labels import HEIGHT_DOTS, WIDTH_DOTS, render
from tests.unit.trace.label_fixtures import carton_label


def _zbar(path: Path) -> list[str]:
    out = subprocess.run(["zbarimg", "-q", "--raw", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize("lot", ["YN2509A", "A/B%C", "x-y.z_1"])
def test_png_qr_decodes_to_the_digital_link_with_zbar(tmp_path: Path, lot: str) -> None:
    label = carton_label(lot=lot)
    path = tmp_path / "label.png"
    path.write_bytes(render(label).png())
    assert _zbar(path) == [label.digital_link]


def test_png_datamatrix_decodes_to_the_element_string_with_zxing(tmp_path: Path) -> None:
    label = carton_label()
    image = Image.open(__import__("io").BytesIO(render(label).png())).convert("L")
    found = {b.format.name if hasattr(b.format, "name") else str(b.format): b for b in zxingcpp.read_barcodes(image)}
    matrix = next(b for name, b in found.items() if "Matrix" in name)
    assert matrix.symbology_identifier == "]d2"  # FNC1 first: a GS1 DataMatrix
    assert matrix.bytes.decode("ascii") == label.code.element_string()


def test_pdf_preview_is_a_pdf_page_of_the_label_size() -> None:
    pdf = render(carton_label()).pdf()
    assert pdf.startswith(b"%PDF")
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert box is not None
    width_pt, height_pt = float(box[1]), float(box[2])
    assert abs(width_pt / 72 * 25.4 - 100) < 1 and abs(height_pt / 72 * 25.4 - 150) < 1


def test_grower_privacy_changes_the_raster() -> None:
    images = {p: np.asarray(render(carton_label(privacy=p)).image) for p in PrivacyLevel}
    assert not np.array_equal(images[PrivacyLevel.full], images[PrivacyLevel.masked])
    assert not np.array_equal(images[PrivacyLevel.masked], images[PrivacyLevel.hidden])


def test_zpl_job_carries_the_same_data() -> None:
    label = carton_label()
    rendered = render(label)
    zpl = rendered.zpl
    assert zpl.startswith("^XA^CI28") and zpl.rstrip().endswith("^XZ")
    assert zpl.isascii()  # Chinese travels as the graphic field, not as text needing a printer font
    assert f"^FDMA,{label.digital_link}^FS" in zpl
    dm = re.search(r"\^BXN,\d+,200,0,0,1,`\^FD(.*?)\^FS", zpl)
    assert dm is not None and dm[1] == "`1" + label.code.element_string().replace("\x1d", "`1")
    gf = re.search(r"\^GFA,(\d+),(\d+),(\d+),([0-9A-F]+)\^FS", zpl)
    assert gf is not None and int(gf[1]) == int(gf[2]) == len(gf[4]) // 2
    rows = np.unpackbits(np.frombuffer(bytes.fromhex(gf[4]), dtype=np.uint8).reshape(-1, int(gf[3])), axis=1)
    assert rows.shape == (HEIGHT_DOTS, WIDTH_DOTS)
    preview_black = ~np.asarray(rendered.image.convert("L")).astype(bool)
    # the graphic field is the preview less the two symbols
    x0, y0, x1, y1 = rendered.qr_box
    outside = np.ones_like(preview_black)
    outside[y0:y1, x0:x1] = False
    x0, y0, x1, y1 = rendered.datamatrix_box
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(rows.astype(bool)[outside], preview_black[outside])
    assert rows.sum() > 10_000  # text is there


def test_trace_code_is_printed_only_when_the_lot_has_one() -> None:
    with_code = np.asarray(render(carton_label()).image)
    without = np.asarray(render(carton_label(trace_code=None)).image)
    assert not np.array_equal(with_code, without)


def test_label_from_the_line_config(tmp_path: Path) -> None:
    from datetime import date

    from grading.trace.codes import TraceConfig
    from grading.trace.labels import carton_label as from_config

    config = TraceConfig.model_validate({
        "company_prefix": "6901234", "packing_center_gln": "6901234000016",
        "digital_link_base": "https://trace.example.cn/r", "grower_privacy": "hidden", "origin": "云南省华宁县",
        "gtins": [{"product": "沃柑", "quality_class": "一级", "size_class": "M", "gtin": "16901234567899"}],
    })
    label = from_config(config, product="沃柑", quality_class="一级", size_class="M", lot="L1", serial=7,
                        pack_date=date(2025, 9, 15), net_weight_g=10000, grower="张三丰",
                        certificate=carton_label().certificate)
    assert label.digital_link == "https://trace.example.cn/r/01/16901234567899/10/L1/21/7?13=250915&3103=010000"
    assert label.origin == "云南省华宁县" and label.grower_privacy is PrivacyLevel.hidden
    path = tmp_path / "l.png"
    path.write_bytes(render(label).png())
    assert _zbar(path) == [label.digital_link]
    with pytest.raises(KeyError, match="no GTIN configured"):
        from_config(config, product="沃柑", quality_class="特级", size_class="M", lot="L1", serial=7,
                    pack_date=date(2025, 9, 15), net_weight_g=10000, certificate=carton_label().certificate)


def test_pallet_label_gs1_128_decodes_to_the_sscc_and_biip_checks_it(tmp_path: Path) -> None:
    """zxing-cpp and zbar read the (00) SSCC back from the PNG, biip parses the element string
    with its check digit, and the ZPL job carries the same SSCC as a native GS1-128."""
    from datetime import datetime

    import biip

    from grading.trace.labels import PalletLabel, render_pallet

    label = PalletLabel(
        sscc="369012341000000014", packing_center="华宁县果品分选中心", carton_count=3, net_weight_g=30_001,
        contents=("沃柑 特级 L × 2 箱", "沃柑 一级 M × 1 箱"), lots=("YN2509A", "YN2509B"),
        created_at=datetime(2026, 12, 2, 9), shipped_at=datetime(2026, 12, 3, 7), destination="昆明",
    )
    rendered = render_pallet(label)
    (bars,) = [b for b in zxingcpp.read_barcodes(rendered.image.convert("L")) if "128" in str(b.format)]
    assert bars.symbology_identifier == "]C1" and bars.bytes.decode("ascii") == "00" + label.sscc  # FNC1 first
    path = tmp_path / "pallet.png"
    path.write_bytes(rendered.png())
    assert _zbar(path) == ["00" + label.sscc]
    parsed = biip.parse("]C1" + bars.bytes.decode("ascii"))
    assert parsed.sscc is not None and parsed.sscc.value == label.sscc and parsed.sscc.extension_digit == 3
    assert rendered.zpl.startswith("^XA^CI28") and rendered.zpl.isascii()
    assert f"^BCN,{256},N,N,N^FD>;>800{label.sscc}^FS" in rendered.zpl
    assert rendered.notes == () and render_pallet(label).png() == rendered.png()
