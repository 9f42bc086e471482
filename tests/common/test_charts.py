"""Inline SVG charts: the numbers are on the marks exactly, printed for people, drawn to scale, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from linksyn.common.charts import (
    Axis,
    Bar,
    Line,
    Marker,
    Series,
    bar_chart,
    exact,
    fit,
    format_value,
    grouped_bar_chart,
    line_chart,
    text_width,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML: it also works as a standalone .svg file
    assert root.tag == f"{SVG}svg"
    return root


def bars(root: ET.Element) -> list[tuple[str, str, str, float, str]]:
    """(series, label, data-value, rect width, printed text) of every bar."""
    out = []
    for g in root.iter(f"{SVG}g"):
        if g.get("class") != "bar":
            continue
        rect = g.find(f"{SVG}rect")
        text = g.find(f"{SVG}text")
        out.append((g.get("data-series"), g.get("data-label"), g.get("data-value"),
                    float(rect.get("width")) if rect is not None else 0.0, "".join(text.itertext())))
    return out


def test_bars_carry_their_exact_numbers_print_them_and_are_drawn_to_scale():
    root = parse(bar_chart("funnel", "Records", [Bar("seeds", 42), Bar("paths", 21), Bar("kept", 0),
                                                  Bar("share", 0.1 + 0.2)]))
    assert root.get("data-chart") == "funnel"
    got = bars(root)
    assert [(b[1], b[2], b[4]) for b in got] == [("seeds", "42", "42"), ("paths", "21", "21"), ("kept", "0", "0"),
                                                 ("share", repr(0.1 + 0.2), "0.3")]
    widths = {b[1]: b[3] for b in got}
    assert widths["paths"] == pytest.approx(widths["seeds"] / 2, rel=1e-3) and widths["kept"] == 0


def test_shares_print_as_percentages_and_a_log_axis_still_orders_bars():
    root = parse(bar_chart("d", "Degrees", [Bar("1", 1000), Bar("2-3", 10), Bar("4-7", 1)], Axis(log=True)))
    w = [b[3] for b in bars(root)]
    assert w[0] > w[1] > w[2] > 0
    assert format_value(0.2345, Axis(percent=True)) == "23.4%"
    assert format_value(12345) == "12,345" and format_value(2.5, Axis(unit=" s")) == "2.5 s"
    assert format_value(None) == "–" and exact(3.0) == "3" and exact(0.25) == "0.25"


def test_grouped_bars_one_per_series_and_missing_values_shown_as_such():
    root = parse(grouped_bar_chart("mix", "Share", ["physics", "history"],
                                   [Series("target", [0.6, 0.4]), Series("dataset", [1.0, None])], Axis(percent=True)))
    got = {(b[0], b[1]): (b[2], b[4]) for b in bars(root)}
    assert got == {("target", "physics"): ("0.6", "60.0%"), ("target", "history"): ("0.4", "40.0%"),
                   ("dataset", "physics"): ("1", "100.0%"), ("dataset", "history"): ("", "–")}
    with pytest.raises(ValueError, match="series 'dataset' has 1 values for 2 labels"):
        grouped_bar_chart("mix", "Share", ["a", "b"], [Series("dataset", [1.0])])


def test_text_is_escaped_and_long_labels_are_cut_with_the_full_text_kept():
    evil = '<script>alert("x")</script> & more ' + "very long label " * 30
    svg = bar_chart("e", "Title <b>", [Bar(evil, 1)])
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)
    (bar,) = bars(root)
    assert bar[1] == evil  # the exact label stays on the mark
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert "".join(labels[0].itertext()).endswith("…") and labels[0].find(f"{SVG}title").text == evil


def test_wide_characters_count_double_when_fitting():
    assert text_width("知识点") == 3 * 12 and text_width("abc") == pytest.approx(3 * 7.2)
    assert fit("知识点图谱", 40) == "知识…" and fit("short", 100) == "short"


def test_lines_carry_their_points_and_markers_their_value():
    root = parse(line_chart("coverage", "Coverage", [Line("value", [(0, 0.0), (10, 0.5), (20, 0.75)]),
                                                     Line("uniform", [(0, 0.0), (20, 0.5)], dashed=True)],
                            x_label="paths", y_label="KPs", y_axis=Axis(percent=True), markers=[Marker("run", 20, 0.7)]))
    lines = {p.get("data-series"): p.get("data-points") for p in root.iter(f"{SVG}polyline")}
    assert lines == {"value": "0,0 10,0.5 20,0.75", "uniform": "0,0 20,0.5"}
    ends = {g.get("data-series"): g.get("data-value") for g in root.iter(f"{SVG}g") if g.get("class") == "end"}
    assert ends == {"value": "0.75", "uniform": "0.5"}
    (marker,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "marker"]
    assert (marker.get("data-x"), marker.get("data-value")) == ("20", "0.7")
