"""Grouped horizontal bar charts as inline SVG (no scripts, no external files); every label is escaped."""
from __future__ import annotations

import math
from html import escape

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
BAR, GAP, LABEL_W, PLOT_W, VALUE_W = 14, 10, 170, 520, 90


def bar_chart(title: str, groups: list[str], series: list[str], values: dict, *, unit: str, kind: str,
              data: dict | None = None, reference: float | None = None) -> str:
    """A figure with one block of bars per group and one colour per series; values[(group, series)] is a number
    or None (drawn as 'n/a'). The scale is logarithmic when the values span more than a factor of 20.
    `kind` and `data` become the svg's class and data-* attributes; `reference` draws a dashed line there."""
    numbers = [v for v in values.values() if v]
    top = max(numbers + [reference or 0] + [1e-9])
    low = min(numbers + [reference or top]) if numbers else top
    log = low > 0 and top / low > 20
    lo_log = math.floor(math.log10(low)) if log else 0

    def x(v: float) -> float:
        if log:
            return PLOT_W * (math.log10(v) - lo_log) / (math.log10(top) - lo_log + 1e-12) if v > 0 else 0
        return PLOT_W * v / top

    legend_h = 6 + 16 * len(series)
    block = len(series) * BAR + GAP
    height = legend_h + len(groups) * block + 24
    width = LABEL_W + PLOT_W + VALUE_W
    attrs = "".join(f' data-{escape(k)}="{escape(str(v))}"' for k, v in (data or {}).items())
    out = [f'<figure><figcaption>{escape(title)}{" (log scale)" if log else ""}</figcaption>',
           (f'<svg class="chart {escape(kind)}"{attrs} xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" font-size="11" font-family="sans-serif">')]
    for i, s in enumerate(series):
        out.append(f'<rect x="{LABEL_W}" y="{4 + 16 * i}" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
                   f'<text x="{LABEL_W + 14}" y="{13 + 16 * i}">{escape(s)}</text>')
    for g, group in enumerate(groups):
        y0 = legend_h + g * block
        out.append(f'<text x="{LABEL_W - 6}" y="{y0 + len(series) * BAR / 2 + 4}" text-anchor="end">'
                   f'{escape(group)}</text>')
        for i, s in enumerate(series):
            v = values.get((group, s))
            y = y0 + i * BAR
            if not v:
                out.append(f'<text x="{LABEL_W + 4}" y="{y + BAR - 3}" fill="#888">n/a</text>')
                continue
            w = max(x(v), 1)
            label = f"{v:.2f}{unit}" if unit == "x" else f"{v:,.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}"
            out.append(f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR - 2}" '
                       f'fill="{COLORS[i % len(COLORS)]}"><title>{escape(f"{group}, {s}: {label}")}</title></rect>'
                       f'<text x="{LABEL_W + w + 4:.1f}" y="{y + BAR - 3}">{escape(label)}</text>')
    axis_y = legend_h + len(groups) * block
    out.append(f'<line x1="{LABEL_W}" y1="{legend_h}" x2="{LABEL_W}" y2="{axis_y}" stroke="#444"/>')
    if reference is not None:
        rx = LABEL_W + x(reference)
        out.append(f'<line x1="{rx:.1f}" y1="{legend_h}" x2="{rx:.1f}" y2="{axis_y}" stroke="#444" '
                   f'stroke-dasharray="4 3"/><text x="{rx:.1f}" y="{axis_y + 14}" text-anchor="middle">'
                   f'{reference:g}{escape(unit)}</text>')
    out.append("</svg></figure>")
    return "\n".join(out)
