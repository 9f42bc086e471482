"""Charts as inline SVG: numbers in, SVG text out (pure), for `linksyn report` and the dataset card's plots.

Every chart is one self-contained SVG 1.1 element: no script, no external font, style or image, so it renders inline
in an HTML page, alone as a file, or as an <img> on a Hugging Face dataset page. Its numbers are there for people
and for machines: each value is printed beside its mark, and the marks carry it exactly (`data-value`, the number
as Python's repr writes it) with its series and label; the <svg> names the chart (`data-chart`). A browser test
reads these and compares them with the figures they come from.

Text is escaped (labels come from seeds and models). Widths of labels are estimated (wide East Asian characters
count double), since an SVG cannot measure its own text; a label too long for its column is cut with an ellipsis,
its full text kept in a <title>.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from html import escape
from typing import Sequence

FONT = "system-ui, -apple-system, 'Segoe UI', 'Noto Sans', 'Noto Sans CJK SC', 'DejaVu Sans', sans-serif"
FONT_PX = 12
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
"""Series colours, in order (colour-blind safe enough for two or three series side by side)."""
WIDTH = 720
"""Width of every chart in SVG units (the page scales it down on narrow screens)."""


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value, and optionally the text printed beside it (default: the value formatted)."""

    label: str
    value: float
    text: str | None = None


@dataclass(frozen=True)
class Series:
    """One series of a grouped bar chart: a value per category (None: no figure for that category)."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Line:
    """One line of a line chart: (x, y) points in x order."""

    name: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A single labelled point on a line chart (a measured value to compare the lines with)."""

    name: str
    x: float
    y: float


@dataclass(frozen=True)
class Axis:
    """How values are written and scaled: `percent` writes shares 0..1 as percentages; `log` scales bar lengths by
    log10(1 + value) (for counts spanning orders of magnitude)."""

    percent: bool = False
    log: bool = False
    unit: str = ""
    """Appended to printed values (e.g. " s")."""


@dataclass
class _Svg:
    width: int
    height: int
    chart_id: str
    title: str
    scale: str = "linear"
    """How values map to lengths ("linear" or "log"), stated on the <svg> as data-scale."""
    parts: list[str] = field(default_factory=list)

    def text(self, x: float, y: float, s: str, *, anchor: str = "start", cls: str = "", size: int = FONT_PX,
             weight: str = "normal", fill: str = "#222", full: str | None = None) -> None:
        attrs = f'x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
        if weight != "normal":
            attrs += f' font-weight="{weight}"'
        if cls:
            attrs += f' class="{cls}"'
        inner = escape(s)
        if full is not None and full != s:
            inner = f"<title>{escape(full)}</title>{inner}"
        self.parts.append(f"<text {attrs}>{inner}</text>")

    def render(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(self.chart_id)}" '
            f'data-scale="{self.scale}" '
            f'width="{self.width}" height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
            f'font-family="{escape(FONT)}" role="img" aria-label="{escape(self.title)}">'
        )
        return head + f"<title>{escape(self.title)}</title>" + "".join(self.parts) + "</svg>"


# ---- text and numbers ------------------------------------------------------------------------------------------


def text_width(s: str, size: int = FONT_PX) -> float:
    """Estimated rendered width of `s` at `size` px: wide and full-width characters count 1 em, others ~0.6 em."""
    return sum(size * (1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6) for c in s)


def fit(s: str, max_px: float, size: int = FONT_PX) -> str:
    """`s`, cut with an ellipsis to fit `max_px` (estimated)."""
    if text_width(s, size) <= max_px:
        return s
    out, used = [], text_width("…", size)
    for c in s:
        w = text_width(c, size)
        if used + w > max_px:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def format_value(value: float | None, axis: Axis = Axis()) -> str:
    """A value as printed: a percentage (one decimal) for shares, thousands separators for whole numbers, three
    significant digits otherwise; "–" for no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if axis.percent:
        return f"{100 * value:.1f}%"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}{axis.unit}"
    if abs(value) >= 1000:
        return f"{value:,.0f}{axis.unit}"
    return f"{value:.3g}{axis.unit}"


def exact(value: float) -> str:
    """A number as its mark carries it (data-value): ints as ints, floats as repr (round-trips exactly)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return repr(float(value))


def _scaled(value: float, top: float, axis: Axis) -> float:
    """Share 0..1 of the bar area a value fills."""
    if top <= 0 or value <= 0:
        return 0.0
    if axis.log:
        return math.log10(1 + value) / math.log10(1 + top)
    return value / top


def _label_column(labels: Sequence[str], cap: int = 280) -> int:
    """Width of the label column: the longest label's (estimated), at most `cap`, plus its padding."""
    return math.ceil(min(cap, max([40.0, *(text_width(s) for s in labels)]))) + LABEL_PAD


LABEL_PAD = 12


def _legend(svg: _Svg, names: Sequence[str], x: float, y: float) -> None:
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        svg.parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        svg.text(x + 14, y, name, cls="legend")
        x += 14 + text_width(name) + 18


# ---- charts ----------------------------------------------------------------------------------------------------


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], axis: Axis = Axis(), *, series: str = "value") -> str:
    """Horizontal bars, one per label, each with its value printed at its end."""
    return grouped_bar_chart(
        chart_id, title, [b.label for b in bars], [Series(series, [b.value for b in bars])], axis,
        texts=[[b.text for b in bars]], legend=False,
    )


def grouped_bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    axis: Axis = Axis(),
    *,
    texts: Sequence[Sequence[str | None]] | None = None,
    legend: bool = True,
) -> str:
    """Horizontal bars grouped by label: one bar per series in each group (e.g. target, realised, dataset)."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"chart {chart_id!r}: series {s.name!r} has {len(s.values)} values for {len(labels)} labels")
    bar_h = 14 if len(series) > 1 else 18
    gap = 8
    group_h = bar_h * len(series) + gap
    top_pad = 28 + (18 if legend and len(series) > 1 else 0)
    label_w = _label_column(labels)
    printed_texts = [
        (texts[j][i] if texts is not None and texts[j][i] is not None else format_value(v, axis))
        for j, s in enumerate(series) for i, v in enumerate(s.values)
    ]
    value_w = math.ceil(max([60.0, *(text_width(t, 11) for t in printed_texts)])) + 8
    plot_w = WIDTH - label_w - value_w - 10
    height = top_pad + max(1, len(labels)) * group_h + 8
    svg = _Svg(WIDTH, height, chart_id, title, scale="log" if axis.log else "linear")
    svg.text(0, 16, title, size=13, weight="bold", cls="chart-title")
    if legend and len(series) > 1:
        _legend(svg, [s.name for s in series], label_w, 38)
    values = [v for s in series for v in s.values if v is not None]
    top = max([0.0, *values])
    if not labels:
        svg.text(label_w, top_pad + 12, "(no data)", fill="#777")
    for i, label in enumerate(labels):
        y0 = top_pad + i * group_h
        shown = fit(label, label_w - LABEL_PAD)
        svg.text(label_w - 8, y0 + (bar_h * len(series)) / 2 + 4, shown, anchor="end", cls="label", full=label)
        for j, s in enumerate(series):
            v = s.values[i]
            y = y0 + j * bar_h
            colour = PALETTE[j % len(PALETTE)]
            w = plot_w * _scaled(v or 0.0, top, axis)
            data = f'data-series="{escape(s.name)}" data-label="{escape(label)}"'
            if v is None:
                svg.parts.append(f'<g class="bar" {data} data-value="">')
                svg.text(label_w + 2, y + bar_h - 3, "–", fill="#777", cls="value")
                svg.parts.append("</g>")
                continue
            custom = texts[j][i] if texts is not None else None
            printed = custom if custom is not None else format_value(v, axis)
            svg.parts.append(f'<g class="bar" {data} data-value="{exact(v)}">')
            svg.parts.append(
                f'<rect x="{label_w:.1f}" y="{y + 1:.1f}" width="{max(w, 0.0):.2f}" height="{bar_h - 2}" fill="{colour}">'
                f"<title>{escape(s.name)}: {escape(label)} = {escape(printed)}</title></rect>"
            )
            svg.text(label_w + w + 4, y + bar_h - 4, printed, cls="value", size=11)
            svg.parts.append("</g>")
    return svg.render()


def _nice_ceiling(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def line_chart(
    chart_id: str,
    title: str,
    lines: Sequence[Line],
    *,
    x_label: str,
    y_label: str,
    y_axis: Axis = Axis(),
    markers: Sequence[Marker] = (),
    y_max: float | None = None,
) -> str:
    """Lines over a shared x axis, with axes, gridlines, a legend and each line's last value printed at its end;
    markers are single measured points. Each line's points are on its <polyline> (`data-points`: "x,y x,y ...")."""
    height = 300
    left, right, top_pad, bottom = 58, 150, 48, 40
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    xs = [x for ln in lines for x, _ in ln.points] + [m.x for m in markers]
    ys = [y for ln in lines for _, y in ln.points] + [m.y for m in markers]
    x_top = _nice_ceiling(max([1.0, *xs]))
    y_top = y_max if y_max is not None else _nice_ceiling(max([0.0, *ys]) or 1.0)
    svg = _Svg(WIDTH, height, chart_id, title)
    svg.text(0, 16, title, size=13, weight="bold", cls="chart-title")
    _legend(svg, [ln.name for ln in lines] + [m.name for m in markers], left, 36)

    def px(x: float) -> float:
        return left + plot_w * (x / x_top)

    def py(y: float) -> float:
        return top_pad + plot_h * (1 - y / y_top)

    for k in range(5):
        yv = y_top * k / 4
        svg.parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#ddd"/>')
        svg.text(left - 6, py(yv) + 4, format_value(yv, y_axis), anchor="end", size=10, fill="#555")
        xv = x_top * k / 4
        svg.text(px(xv), top_pad + plot_h + 14, format_value(xv), anchor="middle", size=10, fill="#555")
    svg.parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top_pad}" y2="{top_pad + plot_h}" stroke="#888"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top_pad + plot_h}" y2="{top_pad + plot_h}" stroke="#888"/>'
    )
    svg.text(left + plot_w / 2, height - 6, x_label, anchor="middle", size=11, fill="#333")
    svg.parts.append(
        f'<text x="12" y="{top_pad + plot_h / 2:.1f}" font-size="11" fill="#333" text-anchor="middle" '
        f'transform="rotate(-90 12 {top_pad + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    for i, ln in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ln.points)
        data = " ".join(f"{exact(x)},{exact(y)}" for x, y in ln.points)
        dash = ' stroke-dasharray="6 4"' if ln.dashed else ""
        svg.parts.append(
            f'<polyline class="line" data-series="{escape(ln.name)}" data-points="{data}" points="{coords}" '
            f'fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        if ln.points:
            x, y = ln.points[-1]
            svg.parts.append(f'<g class="end" data-series="{escape(ln.name)}" data-value="{exact(y)}">')
            svg.text(px(x) + 6, py(y) + 4 + 12 * i, f"{format_value(y, y_axis)}", cls="value", size=11, fill=colour)
            svg.parts.append("</g>")
    for k, m in enumerate(markers):
        colour = PALETTE[(len(lines) + k) % len(PALETTE)]
        svg.parts.append(
            f'<g class="marker" data-series="{escape(m.name)}" data-x="{exact(m.x)}" data-value="{exact(m.y)}">'
            f'<circle cx="{px(m.x):.1f}" cy="{py(m.y):.1f}" r="5" fill="{colour}" stroke="#fff" stroke-width="1.5">'
            f"<title>{escape(m.name)}: {escape(format_value(m.y, y_axis))} at {escape(format_value(m.x))}</title></circle>"
        )
        svg.text(px(m.x) + 8, py(m.y) - 8, format_value(m.y, y_axis), cls="value", size=11, fill=colour)
        svg.parts.append("</g>")
    return svg.render()
