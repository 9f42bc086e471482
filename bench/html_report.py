"""HTML report benchmark: `python bench/html_report.py [--run DIR | --seeds 10000 --rows 100000]`.

What it measures, for the report of a large graph and dataset:
- the page's size (aim: < 5 MB) and the time `linksyn report` takes to write it;
- how long headless Chromium (Debian's, scripts/install_chromium.sh) takes from navigation start to the load event
  (aim: < 2 s): the first load in a fresh browser and the median of the next loads, against a blank page loaded the
  same way in the same browser (its own floor: the ratio is what to compare across machines).

Outputs to report on: `--run DIR` (a `linksyn run` output folder, or with --graph/--dataset a cluster's), or, by
default, made here: a synthetic graph of --seeds seeds (linksyn.graph's builder, Zipf-popular KPs, as
bench/sampler.py makes it) and a dataset of --rows rows whose lineage points at its seeds, written by the sink's
own store (one partition: shards of 10,000 rows, its manifest, the card and its plots).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from report import Aim, Figure, add_json_option, write_json  # noqa: E402


def make_outputs(folder: Path, n_seeds: int, n_rows: int) -> None:
    """A run-like folder without report.json (as a cluster leaves it): graph/ and dataset/."""
    import numpy as np
    from linksyn.common.dataset import DatasetTotals
    from linksyn.common.snapshots.store import SnapshotStore
    from linksyn.sink.card import card_plots, render_card
    from linksyn.sink.store import ROW_SCHEMA, DatasetStore
    from sampler import synthetic

    snap = synthetic(n_seeds, max(100, n_seeds // 2))
    SnapshotStore(folder / "graph").write(snap)
    rng = np.random.default_rng(0)
    seed_ids = snap.seed_ids.to_list()
    words = "force energy mass charge cell gene market price angle vector matrix law state river city king".split()
    store = DatasetStore(str(folder / "dataset"))
    totals = DatasetTotals()
    shards = []
    per_shard = 10_000
    for number, start in enumerate(range(0, n_rows, per_shard)):
        rows = []
        for i in range(start, min(n_rows, start + per_shard)):
            seeds = rng.choice(len(seed_ids), 3, replace=False)
            q = " ".join(rng.choice(words, 24)) + f" case {i}?"
            rows.append({
                "id": f"{i:032x}", "question": q, "answer": f"answer {i}", "rationale": "because " * 20,
                "knowledge_points": [f"kp{k}" for k in rng.integers(0, 100, 3)],
                "discipline": f"d{int(rng.integers(0, 8))}", "difficulty": int(rng.integers(1, 6)),
                "source_seed_ids": [seed_ids[int(s)] for s in seeds], "path_id": f"p{i}",
                "path_kps": [f"kp{k}" for k in rng.integers(0, 100, 4)], "model": "bench-model",
                "models": ["bench-model"], "prompt_version": "link-v1", "mode": "link", "lang": "en",
                "prompt_tokens": 900, "completion_tokens": 300,
            })
        columns = {name: [r[name] for r in rows] for name in ROW_SCHEMA.names}
        files = store.write_shard(0, number, columns, ["parquet"])
        shards.append({"number": number, "records": len(rows), "files": files})
        totals.add_columns(columns)
    totals.shards = len(shards)
    totals.dropped.update({"duplicate": n_rows // 50, "near_duplicate": n_rows // 80, "contaminated": n_rows // 500})
    store.write_manifest(0, {"version": 2, "partition": 0, "formats": ["parquet"], "shards": shards, "chunks": [],
                             "totals": totals.to_json()})
    plots = card_plots(totals)
    card = render_card(totals, ["parquet"], "bench", [(f, c) for f, (c, _) in plots.items()])
    store.write_card(card, {f: svg for f, (_, svg) in plots.items()})


def load_times(url: str, blank: str, repeat: int, workdir: Path) -> tuple[float, list[float], list[float]]:
    """(first load of `url` in a fresh browser, later loads, loads of `blank`), ms from navigation to load event."""
    from tests.tooling.chromium import Chromium

    with Chromium(workdir / "chromium-profile").start() as browser:
        page = browser.new_page()
        first = page.navigate(url)["load"]
        later, floor = [], []
        for _ in range(repeat):
            floor.append(page.navigate(blank)["load"])
            later.append(page.navigate(url)["load"])
        page.close()
    return first, later, floor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="report on these outputs instead of making some")
    ap.add_argument("--graph", help="graph store (with --run, when not RUN/graph)")
    ap.add_argument("--dataset", help="dataset folder (with --run, when not RUN/dataset)")
    ap.add_argument("--seeds", type=int, default=10_000, help="seeds of the synthetic graph")
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the synthetic dataset")
    ap.add_argument("--repeat", type=int, default=5, help="loads after the first (median reported)")
    ap.add_argument("--keep", type=Path, help="copy the page here")
    add_json_option(ap)
    args = ap.parse_args()

    from linksyn.report import write_report

    work = Path(tempfile.mkdtemp(prefix="bench-html-report-"))
    try:
        if args.run is None:
            t = time.perf_counter()
            make_outputs(work / "outputs", args.seeds, args.rows)
            print(f"made {args.seeds:,} seeds graph and {args.rows:,} rows dataset in {time.perf_counter() - t:.1f} s")
            source, what = work / "outputs", f"synthetic graph of {args.seeds:,} seeds, dataset of {args.rows:,} rows"
        else:
            source, what = args.run, f"outputs in {args.run}"
        t = time.perf_counter()
        page = write_report(source, work / "report.html", graph=args.graph, dataset=args.dataset)
        made_s = time.perf_counter() - t
        size = page.stat().st_size
        blank = work / "blank.html"
        blank.write_text("<!DOCTYPE html><html><head><meta charset=utf-8><title>blank</title></head><body></body></html>")
        first, later, floor = load_times(page.as_uri(), blank.as_uri(), args.repeat, work)
        if args.keep:
            shutil.copy(page, args.keep)
        warm, base = statistics.median(later), statistics.median(floor)
        print(f"{what}\n  page {size / 1e6:.2f} MB, written in {made_s:.1f} s\n  load event: first {first:.0f} ms, then "
              f"median {warm:.0f} ms (blank page {base:.0f} ms)")
        figures = [
            Figure("page size", size / 1e6, "MB", aim=Aim("<", 5)),
            Figure("report written (linksyn report)", made_s, "s"),
            Figure("load event, first load in a fresh browser", first, "ms", "blank page", base, aim=Aim("<", 2000),
                   note="ratio = page / blank page, same browser"),
            Figure("load event, median of later loads", warm, "ms", "blank page", base, aim=Aim("<", 2000)),
        ]
        if args.json:
            write_json(args.json, figures, [what])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
