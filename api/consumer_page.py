"""The consumer page and the not-found page of the Digital Link resolver, as HTML.

Chinese first (``lang="zh-CN"``), laid out for a phone first (one column, readable without
zoom at 390 px), no scripts and no outside resources: the temperature chart is an inline SVG
drawn here from the view's series. The not-found page is the same for a malformed code and an
unknown one, so it tells a prober nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import escape

from grading.trace.resolver import ConsumerView, TemperatureSeries

_STYLE = """
*{box-sizing:border-box}body{margin:0;font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;
background:#f4f6f3;color:#1d2a1d;font-size:17px;line-height:1.5}
header{background:#2f6b2f;color:#fff;padding:16px 18px}header h1{margin:0;font-size:26px}
header p{margin:4px 0 0;font-size:18px}main{padding:12px;max-width:640px;margin:0 auto}
section{background:#fff;border-radius:10px;padding:12px 14px;margin:0 0 12px;box-shadow:0 1px 2px #0002}
h2{font-size:18px;margin:0 0 8px}dl{display:grid;grid-template-columns:7em 1fr;gap:4px 8px;margin:0}
dt{color:#5a6b5a}dd{margin:0;word-break:break-all}table{width:100%;border-collapse:collapse}
td,th{text-align:left;padding:3px 4px;border-bottom:1px solid #e3e8e3}
svg{width:100%;height:auto;display:block}.legend span{display:inline-block;margin-right:12px;font-size:14px}
footer{color:#6b7a6b;font-size:13px;text-align:center;padding:8px 0 20px}
"""
CHINA_TIME = timezone(timedelta(hours=8), "CST")  # times on the page are Beijing time


def _local(at: datetime) -> str:
    return at.astimezone(CHINA_TIME).strftime("%m-%d %H:%M")


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Language": "zh-CN",
}


def page_headers() -> dict[str, str]:
    return dict(_HEADERS)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _rows(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in pairs if v not in (None, ""))


def temperature_chart(series: list[TemperatureSeries], width: int = 360, height: int = 200) -> str:
    """An inline SVG line chart: one line per cold room, time across, °C up."""
    points = [p for s in series for p in s.points]
    if not points:
        return '<p id="temperature-none">暂无冷库温度记录</p>'
    left, right, top, bottom = 40, 8, 10, 28
    t0 = min(p.at for p in points).timestamp()
    t1 = max(p.at for p in points).timestamp()
    c0 = min(p.temperature_c for p in points)
    c1 = max(p.temperature_c for p in points)
    if c1 - c0 < 2:
        c0, c1 = c0 - 1, c1 + 1
    span_t = (t1 - t0) or 1.0

    def xy(at: float, c: float) -> str:
        x = left + (at - t0) / span_t * (width - left - right)
        y = top + (c1 - c) / (c1 - c0) * (height - top - bottom)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg id="temperature-chart" viewBox="0 0 {width} {height}" role="img" aria-label="冷库温度曲线">',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
        f'<text x="2" y="{top + 10}" font-size="11">{c1:.1f}°C</text>',
        f'<text x="2" y="{height - bottom}" font-size="11">{c0:.1f}°C</text>',
        f'<text x="{left}" y="{height - 8}" font-size="11">{escape(_local(min(p.at for p in points)))}</text>',
        f'<text x="{width - right}" y="{height - 8}" font-size="11" text-anchor="end">'
        f'{escape(_local(max(p.at for p in points)))}</text>',
    ]
    legend = []
    for index, s in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        path = " ".join(xy(p.at.timestamp(), p.temperature_c) for p in sorted(s.points, key=lambda p: p.at))
        parts.append(f'<polyline class="room" data-room="{escape(s.room)}" fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        legend.append(f'<span style="color:{colour}">━ {escape(s.room)}</span>')
    parts.append("</svg>")
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'


def consumer_page(view: ConsumerView) -> str:
    title = " ".join(x for x in (view.product, view.quality_class, view.size_class) if x)
    product = _rows([
        ("产品", view.product), ("等级", view.quality_class), ("规格", view.size_class),
        ("包装日期", view.pack_date.isoformat() if view.pack_date else None),
        ("净含量", f"{view.net_weight_g / 1000:g} kg" if view.net_weight_g else None),
        ("果数", f"{view.fruit_count} 个" if view.fruit_count else None),
        ("批次", view.lot), ("箱号", view.serial), ("追溯码", view.platform_trace_code),
    ])
    origin = _rows([
        ("产地", view.origin_village), ("种植者", view.grower),
        ("采收日期", view.harvest_date.isoformat() if view.harvest_date else None),
    ])
    sections = [f'<section id="product"><h2>产品信息</h2><dl>{product}</dl></section>']
    if origin:
        sections.append(f'<section id="origin"><h2>产地与采收</h2><dl>{origin}</dl></section>')
    if view.lot_summary is not None:
        summary = view.lot_summary
        rows = "".join(
            f"<tr><td>{escape(c.quality_class)}</td><td>{c.fruit}</td><td>{c.share * 100:.1f}%</td></tr>"
            for c in summary.classes
        )
        mean = f"<p>平均单果重 {summary.mean_weight_g:.0f} g</p>" if summary.mean_weight_g else ""
        sections.append(
            f'<section id="grading"><h2>本批分级结果</h2><p>共分选 {summary.fruit_graded} 个果</p>{mean}'
            f"<table><tr><th>等级</th><th>果数</th><th>占比</th></tr>{rows}</table></section>"
        )
    if view.lot is not None:
        sections.append(f'<section id="coldchain"><h2>冷库温度</h2>{temperature_chart(view.temperatures)}</section>')
    body = (
        f"<header><h1>{escape(view.product)}</h1><p>{escape(title)}</p></header>"
        f"<main>{''.join(sections)}</main><footer>扫码追溯 · GTIN {escape(view.gtin)}</footer>"
    )
    return _page(f"{title} - 产品追溯", body)


def not_found_page() -> str:
    return _page("未找到", "<header><h1>未找到</h1><p>Not found</p></header>"
                 "<main><section><p>没有找到这个追溯码对应的信息。</p></section></main>")
