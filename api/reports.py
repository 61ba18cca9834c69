"""Printable report pages (pack-out, settlement) for the grower: server-rendered HTML with an
inline SVG chart, Chinese first. Text only from the report and the recipe, all escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from grading.recipe import Recipe

_TEXT = {
    "zh-CN": {
        "packout": "分级包装报告", "settlement": "果农结算单", "lot": "批次", "grower": "果农", "product": "品种",
        "origin": "产地", "harvest": "采收日期", "received": "收货重量", "fruit": "果数", "kg": "公斤",
        "quality": "等级", "size": "规格", "share": "占比", "rejects": "次果", "recheck": "复检",
        "recirculated": "回流", "late": "超时", "cartons": "箱数", "total": "合计", "yield": "出成率",
        "price": "单价 (元/公斤)", "value": "金额 (元)", "deductions": "扣款", "payable": "应付",
        "recipe": "分级标准版本", "chart": "等级 × 规格 分布 (果数)", "print": "打印",
    },
    "en": {
        "packout": "Pack-out report", "settlement": "Grower settlement", "lot": "Lot", "grower": "Grower",
        "product": "Product", "origin": "Origin", "harvest": "Harvest date", "received": "Received weight",
        "fruit": "Fruit", "kg": "kg", "quality": "Class", "size": "Size", "share": "Share", "rejects": "Rejects",
        "recheck": "Recheck", "recirculated": "Recirculated", "late": "Late", "cartons": "Cartons",
        "total": "Total", "yield": "Yield", "price": "Price (CNY/kg)", "value": "Value (CNY)",
        "deductions": "Deductions", "payable": "Payable", "recipe": "Recipe version",
        "chart": "Class x size distribution (fruit)", "print": "Print",
    },
}

_STYLE = """
body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC",sans-serif;margin:2em;color:#111}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:.3em .6em;text-align:right}
th{background:#eee}td.l,th.l{text-align:left}@media print{button{display:none}}
"""


def _t(lang: str) -> Mapping[str, str]:
    return _TEXT.get(lang, _TEXT["zh-CN"])


def class_name(recipe: Recipe, quality_class: str, lang: str) -> str:
    for q in recipe.quality_classes:
        if q.id == quality_class:
            return q.name_zh if lang != "en" else q.name_en
    names = {"cull": ("次果", "Cull"), "recheck": ("复检", "Recheck")}
    zh, en = names.get(quality_class, (quality_class, quality_class))
    return zh if lang != "en" else en


def _header(t: Mapping[str, str], title: str, lot: Mapping[str, Any], lang: str) -> str:
    rows = [
        (t["lot"], lot.get("code")), (t["grower"], f"{lot.get('grower', '')} {lot.get('grower_id') or ''}".strip()),
        (t["product"], lot.get("product")), (t["received"], lot.get("received_weight_kg")),
        (t["recipe"], (lot.get("recipe_hash") or "")[:12]),
    ]
    cells = "".join(f"<tr><th class=l>{escape(str(k))}</th><td class=l>{escape('' if v is None else str(v))}</td></tr>" for k, v in rows)
    return (f"<!doctype html><html lang='{escape(lang)}'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><button onclick='print()'>{escape(t['print'])}</button>"
            f"<h1>{escape(title)}</h1><table>{cells}</table>")


def distribution_svg(cells: Sequence[Mapping[str, Any]], recipe: Recipe, lang: str) -> str:
    """A grouped bar chart: one group per size class, one bar per quality class (fruit count)."""
    sizes = sorted({c["size_class"] or "-" for c in cells})
    classes = [q for q in [*recipe.quality_class_ids(), "cull", "recheck"] if any(c["quality_class"] == q for c in cells)]
    if not sizes or not classes:
        return ""
    top = max(c["fruit"] for c in cells) or 1
    colours = ["#2e7d32", "#1565c0", "#f9a825", "#c62828", "#6d4c41", "#546e7a"]
    group_w, bar_w, height = 24 * len(classes) + 16, 22, 200
    width = 60 + group_w * len(sizes) + 160
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 50}' role='img'>"]
    for si, size in enumerate(sizes):
        x0 = 60 + si * group_w
        for qi, quality in enumerate(classes):
            n = sum(c["fruit"] for c in cells if (c["size_class"] or "-") == size and c["quality_class"] == quality)
            h = round(height * n / top)
            parts.append(f"<rect x='{x0 + qi * 24}' y='{height - h + 10}' width='{bar_w}' height='{h}' "
                         f"fill='{colours[qi % len(colours)]}'><title>{escape(quality)} {escape(size)}: {n}</title></rect>")
        parts.append(f"<text x='{x0 + group_w / 2 - 8}' y='{height + 30}' font-size='12' text-anchor='middle'>{escape(size)}</text>")
    for qi, quality in enumerate(classes):
        y = 20 + qi * 18
        parts.append(f"<rect x='{width - 150}' y='{y}' width='12' height='12' fill='{colours[qi % len(colours)]}'/>"
                     f"<text x='{width - 132}' y='{y + 11}' font-size='12'>{escape(class_name(recipe, quality, lang))}</text>")
    parts.append(f"<line x1='55' y1='{height + 10}' x2='{width - 160}' y2='{height + 10}' stroke='#333'/>")
    parts.append(f"<text x='50' y='18' font-size='11' text-anchor='end'>{top}</text></svg>")
    return "".join(parts)


def packout_html(report: Mapping[str, Any], recipe: Recipe, lang: str = "zh-CN") -> str:
    t = _t(lang)
    lot = report.get("lot", {})
    rows = []
    for c in report["cells"]:
        rows.append(
            f"<tr><td class=l>{escape(class_name(recipe, c['quality_class'], lang))}</td>"
            f"<td class=l>{escape(c['size_class'] or '-')}</td><td>{c['fruit']}</td><td>{c['weight_kg']:.3f}</td>"
            f"<td>{c['fruit_percent']:.2f} %</td></tr>"
        )
    for key in ("rejects", "recheck", "recirculated", "late"):
        c = report[key]
        rows.append(f"<tr><td class=l colspan=2>{escape(t[key])}</td><td>{c['fruit']}</td><td>{c['weight_kg']:.3f}</td>"
                    f"<td>{c['fruit_percent']:.2f} %</td></tr>")
    rows.append(f"<tr><th class=l colspan=2>{escape(t['total'])}</th><th>{report['fruit']}</th>"
                f"<th>{report['weight_kg']:.3f}</th><th>100 %</th></tr>")
    cartons = "".join(
        f"<tr><td class=l>{escape(class_name(recipe, c['quality_class'], lang) if c['quality_class'] else '-')}</td>"
        f"<td class=l>{escape(c['size_class'] or '-')}</td><td>{c['cartons']}</td><td>{c['fruit']}</td></tr>"
        for c in report.get("cartons", [])
    )
    yield_text = "" if report.get("yield_percent") is None else f"<p>{escape(t['yield'])}: {report['yield_percent']:.2f} %</p>"
    return (
        _header(t, t["packout"], lot, lang)
        + f"<table id='packout'><tr><th class=l>{escape(t['quality'])}</th><th class=l>{escape(t['size'])}</th>"
        f"<th>{escape(t['fruit'])}</th><th>{escape(t['kg'])}</th><th>{escape(t['share'])}</th></tr>{''.join(rows)}</table>"
        + yield_text
        + f"<h2>{escape(t['chart'])}</h2>{distribution_svg(report['cells'], recipe, lang)}"
        + (f"<h2>{escape(t['cartons'])}</h2><table><tr><th class=l>{escape(t['quality'])}</th><th class=l>{escape(t['size'])}</th>"
           f"<th>{escape(t['cartons'])}</th><th>{escape(t['fruit'])}</th></tr>{cartons}</table>" if cartons else "")
        + "</body></html>"
    )


def settlement_html(report: Mapping[str, Any], recipe: Recipe, lang: str = "zh-CN") -> str:
    t = _t(lang)
    rows = "".join(
        f"<tr><td class=l>{escape(class_name(recipe, line['quality_class'], lang))}</td>"
        f"<td class=l>{escape(line['size_class'] or '-')}</td><td>{line['weight_kg']:.3f}</td>"
        f"<td>{line['price_cny_per_kg']:.2f}</td><td>{line['value_cny']:.2f}</td></tr>"
        for line in report["lines"]
    )
    deductions = "".join(
        f"<tr><td class=l colspan=4>{escape(d['name'])}</td><td>-{d['amount_cny']:.2f}</td></tr>" for d in report["deductions"]
    )
    return (
        _header(t, t["settlement"], report.get("lot", {}), lang)
        + f"<table id='settlement'><tr><th class=l>{escape(t['quality'])}</th><th class=l>{escape(t['size'])}</th>"
        f"<th>{escape(t['kg'])}</th><th>{escape(t['price'])}</th><th>{escape(t['value'])}</th></tr>{rows}"
        f"<tr><th class=l colspan=4>{escape(t['total'])}</th><th>{report['gross_cny']:.2f}</th></tr>{deductions}"
        f"<tr><th class=l colspan=4>{escape(t['payable'])}</th><th>{report['payable_cny']:.2f}</th></tr></table></body></html>"
    )
