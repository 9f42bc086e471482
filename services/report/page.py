"""The report as one self-contained HTML page (pure: Figures in, HTML text out).

No script and nothing fetched: the charts are inline SVG (linksyn.common.charts), the style is inline, and a
Content-Security-Policy forbids any load, so the page shows the same offline, from a file, or attached to a ticket.
Every text that comes from data (seeds, QA, KPs, model names, paths) is escaped; texts carry their language (`lang`),
so Chinese QA and seeds are set in a CJK font.
"""

from __future__ import annotations

import time
from html import escape
from typing import Iterable, Sequence

from linksyn.common.charts import Axis, Bar, Line, Marker, Series, bar_chart, format_value, grouped_bar_chart, line_chart
from linksyn.common.runtime.stats import linksyn_version
from linksyn.common.text import detect_lang
from linksyn.report.figures import Figures, QAView, grade_label

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans','Noto Sans CJK SC',sans-serif;margin:0;color:#222;
background:#fafafa;line-height:1.45}
main{max-width:980px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd;padding-bottom:4px}
section{background:#fff;border:1px solid #e4e4e4;border-radius:6px;padding:4px 16px 12px;margin:14px 0}
figure{margin:10px 0}figcaption{font-size:.85em;color:#555;margin-top:2px}
svg.chart{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:.88em;margin:8px 0}td,th{border:1px solid #e0e0e0;padding:3px 8px;text-align:left;
vertical-align:top}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8em;color:#fff;background:#55A868}
.status.bad{background:#C44E52}
ul.stages{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.82em;padding-left:18px}
.note{color:#8a5a00;font-size:.9em}.muted{color:#666;font-size:.88em}
.qa{border:1px solid #e4e4e4;border-radius:6px;padding:8px 12px;margin:10px 0;background:#fff}
.qa .meta{font-size:.8em;color:#555}.qa .q{font-weight:600;margin:4px 0}.qa .a{margin:4px 0 6px}
.qa details{font-size:.88em}.kp{display:inline-block;background:#eef3fa;border-radius:3px;padding:0 5px;margin:1px 2px;
font-size:.85em}.seed{border-left:3px solid #ddd;padding-left:8px;margin:6px 0}
td.up{background:#e3f3e6}td.down{background:#f8e1e1}
:lang(zh){font-family:'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif}
"""

LOG_SCALE_ABOVE = 50
"""The funnel's bars go on a log scale when its largest step is more than this many times its smallest."""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be loaded: the page is complete as it is."""


def _lang(text: str) -> str:
    return "zh" if detect_lang(text) == "zh" else "en"


def _figure(name: str, svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure data-figure="{escape(name)}">{svg}{cap}</figure>'


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[bool], cls: str = "") -> str:
    """A table of escaped text; a cell given as (text, css class) gets that class."""

    def cell(tag: str, v: object, num: bool) -> str:
        text, extra = v if isinstance(v, tuple) else (v, "")
        classes = " ".join(c for c in ("num" if num else "", extra) if c)
        attr = f' class="{classes}"' if classes else ""
        return f"<{tag}{attr}>{escape(str(text))}</{tag}>"

    out = [f'<table class="{escape(cls)}"><tr>' + "".join(cell("th", h, n) for h, n in zip(head, numeric)) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(cell("td", v, n) for v, n in zip(r, numeric)) + "</tr>")
    return "".join(out) + "</table>"


def _header(f: Figures) -> str:
    bad = f.status not in ("", "ok")
    badge = f' <span class="status{" bad" if bad else ""}">{escape(f.status)}</span>' if f.status else ""
    parts = [f"<h1>linksyn report: {escape(f.title)}{badge}</h1>"]
    if f.facts:
        parts.append("<table class=facts>" + "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in f.facts) + "</table>")
    if f.stage_lines:
        parts.append('<ul class="stages" data-figure="stage-lines">'
                     + "".join(f"<li>{escape(line)}</li>" for line in f.stage_lines) + "</ul>")
    parts += [f'<p class="note">{escape(n)}</p>' for n in f.notes]
    return "<section id=summary>" + "".join(parts) + "</section>"


def _funnel(f: Figures) -> str:
    parts = ["<h2>From seeds to kept rows</h2>"]
    shown = [b.value for b in f.funnel.steps if b.value > 0]
    log = bool(shown) and max(shown) > LOG_SCALE_ABOVE * min(shown)
    parts.append(_figure("funnel", bar_chart("funnel", "Records at each step", f.funnel.steps, Axis(log=log)),
                         "Each step's records (the synth may make several QA of one path)"
                         + ("; bars on a log scale, the steps being orders of magnitude apart." if log else ".")))
    if f.funnel.losses:
        parts.append(_figure("losses", bar_chart(
            "losses", f"Dropped and dead-lettered, by reason ({f.funnel.losses_total:,} in all)", f.funnel.losses),
            "Rows rejected by the seed readers, drops by each stage's filters, and records that kept failing "
            "(dead letters), by service and error."))
    else:
        parts.append('<p class="muted">Nothing was dropped or dead-lettered.</p>')
    return "<section id=funnel>" + "".join(parts) + "</section>"


def _shares(f: Figures) -> str:
    parts = ["<h2>Discipline, difficulty and language mix</h2>"]
    for s in f.shares:
        name = "shares-" + ("discipline" if s.attribute == "discipline" else "grade")
        if not s.labels:
            parts.append(f'<p class="muted">No {escape(s.attribute)} figures.</p>')
            continue
        svg = grouped_bar_chart(name, f"Share by {s.attribute}", s.labels,
                                [Series(k, v) for k, v in s.series.items()], Axis(percent=True))
        parts.append(_figure(name, svg, s.note or "Target: the sampler's aim; realised: the paths it emitted (a "
                             "path's class is its start KP's); dataset: the rows kept."))
    if f.languages is not None:
        s = f.languages
        svg = grouped_bar_chart("shares-language", "Share by language", s.labels,
                                [Series(k, v) for k, v in s.series.items()], Axis(percent=True))
        parts.append(_figure("shares-language", svg, s.note or "Languages detected on the seeds' questions and the "
                             "rows kept."))
        if f.language_examples:
            parts.append("<p>A seed of each language:</p><ul class=examples>" + "".join(
                f'<li data-lang="{escape(e.lang)}"><span lang="en">{escape(e.lang)}: </span>'
                f'<span class="example" lang="{escape(e.lang)}">{escape(e.question)}</span></li>'
                for e in f.language_examples) + "</ul>")
    return "<section id=shares>" + "".join(parts) + "</section>"


def _coverage(f: Figures) -> str:
    c = f.coverage
    if c is None:
        return ""
    parts = ["<h2>Knowledge-point coverage over paths</h2>"]
    names = {"value": "value walker", "uniform": "uniform walker (baseline)"}
    lines = [Line(names.get(w, w), pts, dashed=(w != "value")) for w, pts in c.lines.items()]
    markers = [Marker("this run", *f.realised_coverage)] if f.realised_coverage else []
    if lines or markers:
        svg = line_chart("coverage", f"Share of the graph's {c.n_kps:,} knowledge points on the first n paths", lines,
                         x_label="paths", y_label="KPs covered", y_axis=Axis(percent=True), markers=markers)
        parts.append(_figure("coverage", svg, "Drawn offline on the graph snapshot with each walker (the value walker "
                             "with the run's parameters and targets), the same random seed; the point is what the "
                             "run's own sampler reported."))
    if c.note:
        parts.append(f'<p class="note">{escape(c.note)}</p>')
    return "<section id=coverage>" + "".join(parts) + "</section>"


def _graph(f: Figures) -> str:
    g = f.graph
    if g is None:
        return ""
    size = [("snapshot", f"v{g.version}"), ("knowledge points", f"{g.n_kps:,}"), ("edges", f"{g.n_edges:,}"),
            ("seeds", f"{g.n_seeds:,}")]
    if g.components is not None:
        size.append(("connected components", f"{g.components:,}"))
    parts = ["<h2>Knowledge-point graph</h2>", '<table data-figure="graph-size">' + "".join(
        f"<tr><th>{escape(k)}</th><td class=num>{escape(v)}</td></tr>" for k, v in size) + "</table>"]
    parts.append(_figure("degree", bar_chart("degree", "Knowledge points by degree (linked KPs)", g.degree_bins,
                                             Axis(log=True), series="KPs"),
                         "Bars are on a log scale; the numbers are counts of KPs."))
    parts.append(_figure("top-kps", bar_chart("top-kps", "Most popular knowledge points (seeds attached)", g.top_kps,
                                              series="seeds")))
    return "<section id=graph>" + "".join(parts) + "</section>"


def _costs(f: Figures) -> str:
    if not f.costs and not f.model_tokens:
        return ""
    parts = ["<h2>Time, tokens and cost</h2>"]
    if f.costs:
        timed = [c for c in f.costs if c.wall_s is not None]
        parts.append(_figure("stage-time", bar_chart(
            "stage-time", "Time per stage (s, from start to finished)",
            [Bar(c.stage, c.wall_s or 0.0) for c in timed], Axis(unit=" s"), series="seconds"),
            "A stage's time runs from the start of the run until it finished; stages overlap (records flow through "
            "them as they come)."))
        kinds = sorted({k for c in f.costs for k in c.tokens}, key=lambda k: (k != "prompt_tokens", k))
        with_tokens = [c for c in f.costs if any(c.tokens.values())]
        if with_tokens:
            labels = [c.stage + (f" ({', '.join(c.models)})" if c.models else "") for c in with_tokens]
            parts.append(_figure("stage-tokens", grouped_bar_chart(
                "stage-tokens", "Tokens per stage and model", labels,
                [Series(k.removesuffix("_tokens"), [c.tokens.get(k) for c in with_tokens]) for k in kinds])))
        cost_kinds = sorted({k for c in f.costs for k in c.costs})
        head = ["stage", "status", "models", "build s", "wall s", *kinds, *cost_kinds]
        rows = [[c.stage, c.status, ", ".join(c.models) or "–", format_value(c.build_s), format_value(c.wall_s),
                 *(format_value(c.tokens.get(k)) for k in kinds), *(format_value(c.costs.get(k)) for k in cost_kinds)]
                for c in f.costs]
        parts.append(_table(head, rows, [False, False, False, True, True, *([True] * (len(kinds) + len(cost_kinds)))],
                            "stage-costs"))
        if not cost_kinds:
            parts.append('<p class="muted">No stage reported a cost (keys starting with "cost" in its totals).</p>')
    if f.model_tokens:
        parts.append("<p>Tokens of the rows kept, by generating model:</p>")
        parts.append(_table(["model", "rows", "prompt tokens", "completion tokens"],
                            [(m, f"{n:,}", f"{p:,}", f"{c:,}") for m, n, p, c in f.model_tokens],
                            [False, True, True, True], "model-tokens"))
    return "<section id=costs>" + "".join(parts) + "</section>"


def _kps(kps: Sequence[str]) -> str:
    return "".join(f'<span class="kp" lang="{_lang(k)}">{escape(k)}</span>' for k in kps) or "–"


def _qa(v: QAView) -> str:
    r = v.row
    lang = "zh" if r.get("lang") == "zh" else "en"
    meta = " · ".join(escape(str(x)) for x in (
        r.get("discipline") or "?", grade_label(r.get("difficulty", "?")), f"mode {r.get('mode') or '?'}",
        ", ".join(r.get("models") or [r.get("model") or "?"]), f"path {r.get('path_id', '?')}"))
    seeds = []
    for s in v.seeds:
        if not s.found:
            seeds.append(f'<div class="seed muted">seed {escape(s.id)}: not in the graph snapshot</div>')
            continue
        seeds.append(f'<div class="seed" lang="{_lang(s.question)}"><div>{escape(s.question)}</div>'
                     f'<div class="muted">{escape(s.answer)}</div><div>{_kps(s.kps)}</div></div>')
    path_note = " (the KPs consecutive seeds share: the row has no path_kps)" if v.path_kps_derived else ""
    return (
        f'<article class="qa" data-qa="{escape(str(r.get("id", "")))}" lang="{lang}">'
        f'<div class="meta" lang="en">{meta}</div>'
        f'<div class="q">{escape(str(r.get("question", "")))}</div><div class="a">{escape(str(r.get("answer", "")))}</div>'
        f'<div class="meta" lang="en">path knowledge points{escape(path_note)}: </div><div>{_kps(v.path_kps)}</div>'
        f'<details open><summary lang="en">{len(v.seeds)} seeds it was synthesized from</summary>{"".join(seeds)}</details>'
        "</article>"
    )


def _sample(f: Figures) -> str:
    if not f.sample:
        return ""
    head = f"<h2>Kept QA and where they came from ({len(f.sample)} of {f.sample_of:,})</h2>"
    return "<section id=sample>" + head + "".join(_qa(v) for v in f.sample) + "</section>"


def _probes(f: Figures) -> str:
    p = f.probes
    if p is None:
        return ""
    labels = [f"{r.discipline} · {grade_label(r.grade)}" for r in p.rows]
    series = ([Series(f"previous ({p.previous})", [r.previous for r in p.rows])] if p.previous else [])
    series.append(Series(f"latest ({p.latest})", [r.latest for r in p.rows]))
    parts = ["<h2>Probes: accuracy per discipline and grade</h2>",
             _figure("probes", grouped_bar_chart("probes", "Probe accuracy", labels, series, Axis(percent=True)))]
    rows = []
    for r in p.rows:
        change = r.change
        shown = ("–", "") if change is None else (f"{100 * change:+.1f} points",
                                                  "up" if change > 0 else "down" if change < 0 else "")
        rows.append((r.discipline, grade_label(r.grade), f"{r.n:,}", format_value(r.previous, Axis(percent=True)),
                     format_value(r.latest, Axis(percent=True)), shown))
    table = _table(["discipline", "grade", "questions", "previous", "latest", "change"], rows,
                   [False, False, True, True, True, True], "probe-table")
    parts.append(table)
    return "<section id=probes>" + "".join(parts) + "</section>"


def render(f: Figures) -> str:
    """The whole page."""
    body = "".join([_header(f), _funnel(f), _shares(f), _coverage(f), _graph(f), _costs(f), _sample(f), _probes(f)])
    sampled = ("<p class=muted>To keep this page small: " + "; ".join(escape(s) for s in f.sampled) + ".</p>"
               if f.sampled else "")
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>linksyn report: {escape(f.title)}</title><style>{CSS}</style></head>"
        f'<body><main data-report-kind="{escape(f.kind)}">{body}'
        f'<footer class="muted">{sampled}<p>Made by linksyn {escape(linksyn_version())} on {escape(generated)}.</p></footer>'
        "</main></body></html>\n"
    )
