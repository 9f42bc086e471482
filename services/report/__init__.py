"""`linksyn report`: one self-contained HTML page showing a run, or what a cluster left, with plots and their numbers.

Not a service: it reads files (a run's report.json, the graph snapshot store, the dataset folder, probe results)
through the contracts in linksyn.common, so a cluster's dataset folder and graph store are enough:
  sources.py    find and read the parts (run folder, dataset folder, graph store, probe files)
  figures.py    compute the figures (funnel, shares, coverage, graph, cost, sample QA, probes)
  coverage.py   KP coverage curves of the value and uniform walkers on the snapshot
  summary.py    one line per stage in its own terms (also what `linksyn run` prints)
  page.py       the HTML page (inline SVG charts from linksyn.common.charts, no script, nothing fetched)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from linksyn.report.sources import ReportSourceError

REPORT_FILE = "report.html"
"""The page's name in a run folder."""

__all__ = ["REPORT_FILE", "ReportSourceError", "write_report"]


def write_report(
    path: str | Path,
    out: str | Path | None = None,
    *,
    graph: str | None = None,
    dataset: str | None = None,
    dataset_state: str | None = None,
    probe_files: Sequence[str | Path] = (),
    sample_qa: int | None = None,
) -> Path:
    """Write the report of `path` (see linksyn.report.sources.locate) to `out` and return where it went. The default
    is PATH/report.html for a run folder or a folder holding dataset/ and graph/; a dataset folder or a graph store
    itself needs `out` (the page is not written into them). ReportSourceError when there is nothing to report on."""
    from linksyn.report.figures import SampleSizes, compute
    from linksyn.report.page import render
    from linksyn.report.sources import locate

    src = locate(path, graph=graph, dataset=dataset, dataset_state=dataset_state, probe_files=probe_files)
    sizes = SampleSizes() if sample_qa is None else SampleSizes(qa=sample_qa)
    if out is None and src.run is None and str(path) in (src.graph_url, src.dataset.url if src.dataset else None):
        raise ReportSourceError(f"{path} is a dataset folder or graph store: say where the page goes (--out)")
    html = render(compute(src, sizes))
    target = Path(out) if out is not None else Path(path) / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target
