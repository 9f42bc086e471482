"""The HTML report of a real run, opened in a real browser: headless Chromium (Debian's, scripts/install_chromium.sh)
reads the page's figures off the rendered charts and they must be the numbers of the run's report.json.

The run: `linksyn run` on the 42 example seeds with the LLM-free extractor (static MiniLM keyphrases) and a small
synth workload on the embedded SmolLM2 (6 paths, short replies): every stage real, about 1-3 minutes on 2 CPU cores.
The screenshot of the page is kept under the test's tmp dir (its path is printed); with LINKSYN_TEST_ARTIFACTS=DIR
the screenshot and the page are also copied there (pytest's tmp dirs are rotated).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from linksyn.common.charts import format_value
from linksyn.common.grades import GRADE_NAMES
from linksyn.common.snapshots.store import SnapshotStore

from tests.tooling.chromium import Chromium, find_chromium

REPO = Path(__file__).resolve().parents[2]
PATHS = 6

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

READ_FIGURES = """(() => {
  const charts = {};
  for (const svg of document.querySelectorAll('svg.chart')) {
    const c = {scale: svg.dataset.scale, bars: [], lines: [], markers: []};
    for (const g of svg.querySelectorAll('g.bar')) {
      const r = g.querySelector('rect'), t = g.querySelector('text');
      c.bars.push({series: g.dataset.series, label: g.dataset.label, value: g.dataset.value,
                   width: r ? r.getBoundingClientRect().width : 0, text: t ? t.textContent : ''});
    }
    for (const p of svg.querySelectorAll('polyline.line'))
      c.lines.push({series: p.dataset.series, points: p.dataset.points, length: p.getTotalLength()});
    for (const m of svg.querySelectorAll('g.marker'))
      c.markers.push({series: m.dataset.series, x: m.dataset.x, value: m.dataset.value,
                      width: m.querySelector('circle').getBoundingClientRect().width});
    charts[svg.dataset.chart] = c;
  }
  return {
    charts,
    stages: [...document.querySelectorAll('[data-figure=stage-lines] li')].map(li => li.textContent),
    qa: [...document.querySelectorAll('article.qa')].map(a => ({lang: a.lang, seeds: a.querySelectorAll('.seed').length,
                                                                missing: a.querySelectorAll('.seed.muted').length})),
    graph: Object.fromEntries([...document.querySelectorAll('[data-figure=graph-size] tr')]
                              .map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])),
  };
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    if find_chromium() is None or b"Noto Sans CJK" not in subprocess.run(["fc-list"], capture_output=True).stdout:
        subprocess.run(["bash", str(REPO / "scripts" / "install_chromium.sh")], check=True, timeout=1200)
    binary = find_chromium()
    assert binary, "scripts/install_chromium.sh did not install chromium"
    return binary


def values(chart: dict, series: str | None = None) -> dict[str, float]:
    return {b["label"]: float(b["value"]) for b in chart["bars"] if series is None or b["series"] == series}


def grade(key: str) -> str:
    return f"{key} {GRADE_NAMES[int(key)]}"


def test_the_report_of_a_real_run_shows_the_numbers_of_its_report_json(tmp_path: Path, chromium: str):
    cfg = tmp_path / "linksyn.yaml"
    cfg.write_text(yaml.safe_dump({
        "extractor": {"mode": "keyphrase", "keyphrase_tokens": "static"},
        "sampler": {"max_paths": PATHS},
        # SmolLM2-135M often echoes a seed; the copy filter has its own tests, here the report is under test.
        "synth": {"max_tokens": 160, "max_copy_overlap": 1.0},
    }))
    out = tmp_path / "run"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("linksyn")), "run", "--seeds", str(REPO / "examples" / "seeds.jsonl"),
         "--out", str(out), "--config", str(cfg), "--timeout", "1200"],
        capture_output=True, text=True, timeout=1500)
    report = json.loads((out / "report.json").read_text())
    assert proc.returncode == 0, (report.get("error"), proc.stderr[-3000:])
    assert proc.stdout.count("report:") == 1 and f"report: {out / 'report.html'}" in proc.stdout, proc.stdout
    stages = report["stages"]
    kept = stages["sink"]["totals"]["kept"]
    assert kept >= 1, stages["synth"]
    assert f"kept {kept} rows" in proc.stdout  # the sink in its own terms, not "in=.. out=0"

    with Chromium(tmp_path / "chromium-profile", chromium).start() as browser:
        page = browser.new_page()
        timing = page.navigate((out / "report.html").as_uri())
        shot = page.screenshot(tmp_path / "report.png")
        print(f"\nscreenshot: {shot}\nload event after {timing['load']:.0f} ms, {timing['decodedBodySize']:,} bytes")
        keep = os.environ.get("LINKSYN_TEST_ARTIFACTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for f in (shot, out / "report.html"):
                print(f"kept: {shutil.copy(f, Path(keep) / f'browser-test-{f.name}')}")
        seen = page.evaluate(READ_FIGURES)
        cjk_fonts = page.fonts_for("[data-lang=zh] .example")
        page.close()
    charts = seen["charts"]

    # The funnel, step by step, as report.json counts it.
    rejected = report["seeds_rejected"]["count"]
    assert values(charts["funnel"]) == {
        "seed rows read": report["seeds_in"] + rejected, "seeds in": report["seeds_in"],
        "annotated": report["annotated"], "seeds in the graph": stages["graph"]["details"]["seeds"],
        "paths": report["paths"], "QA synthesized": report["synthesized"], "rows kept": kept}
    drops = sum(v for s in ("synth", "sink") for k, v in stages[s].get("totals", {}).items() if k.startswith("drop:"))
    drops += stages["sampler"]["details"].get("link_paths_short", {}).get("dropped", 0)  # walks too short to link
    if "losses" in charts:
        assert sum(values(charts["losses"]).values()) == drops + report["dead_letters"]["count"] + rejected
    else:
        assert drops + report["dead_letters"]["count"] + rejected == 0
    # Shares: the sampler's target and realised, by discipline and by grade; the dataset's.
    sampler = stages["sampler"]["details"]
    for chart, key, label in (("shares-discipline", "discipline", str), ("shares-grade", "difficulty", grade)):
        for series, part in (("target", "target"), ("realised (paths)", "realised")):
            shown = values(charts[chart], series)
            want = {label(k): v for k, v in sampler[key][part].items()}
            assert {k: shown[k] for k in want} == pytest.approx(want) and sum(shown.values()) == pytest.approx(1.0)
    disciplines: dict[str, int] = {}  # over the sink's partitions
    for path in (out / "dataset" / ".sink-state" / "partitions").glob("*/manifest.json"):
        for k, v in json.loads(path.read_text())["totals"]["disciplines"].items():
            disciplines[k] = disciplines.get(k, 0) + v
    assert values(charts["shares-discipline"], "dataset (rows kept)") == pytest.approx(
        {k: disciplines.get(k, 0) / kept for k in values(charts["shares-discipline"], "dataset (rows kept)")})
    # Coverage: the run's own point, and the value walker's curve (redrawn on the snapshot) ending on it.
    (marker,) = charts["coverage"]["markers"]
    assert (int(marker["x"]), float(marker["value"])) == (PATHS, pytest.approx(sampler["kp_coverage"]))
    assert marker["width"] > 0
    lines = {ln["series"]: [tuple(map(float, p.split(","))) for p in ln["points"].split()] for ln in charts["coverage"]["lines"]}
    assert lines["value walker"][-1] == (PATHS, pytest.approx(sampler["kp_coverage"]))
    assert lines["uniform walker (baseline)"][-1][0] == PATHS
    assert all(ln["length"] > 0 for ln in charts["coverage"]["lines"])
    # The graph: its size and degree distribution add up to the snapshot's.
    snap = SnapshotStore(out / "graph").latest()
    assert seen["graph"]["knowledge points"] == f"{snap.n_kps:,}" == f"{stages['graph']['details']['nodes']:,}"
    assert sum(values(charts["degree"]).values()) == snap.n_kps
    assert max(values(charts["top-kps"]).values()) == snap.kp_popularity.max()
    # Time and tokens per stage.
    assert values(charts["stage-time"]) == pytest.approx({n: stages[n]["wall_s"] for n in report["stages_ran"]})
    synth_tokens = {b["series"]: float(b["value"]) for b in charts["stage-tokens"]["bars"] if b["label"].startswith("synth")}
    assert synth_tokens == {"prompt": stages["synth"]["totals"]["prompt_tokens"],
                            "completion": stages["synth"]["totals"]["completion_tokens"]}
    # Every bar is drawn to scale (linear: proportional; log: in the order of the values) and prints its number.
    for name in ("funnel", "losses", "degree", "stage-time", "top-kps"):
        chart = charts.get(name, {"bars": [], "scale": "linear"})
        bars = chart["bars"]
        top = max((float(b["value"]) for b in bars), default=0)
        widest = max((b["width"] for b in bars), default=0)
        for b in bars:
            v = float(b["value"])
            assert (b["width"] > 0) == (v > 0), (name, b)
            if chart["scale"] == "linear":
                assert b["width"] == pytest.approx(v / top * widest, abs=1.0), (name, b)
            if name not in ("top-kps", "stage-time"):
                assert b["text"] == format_value(v), (name, b)
        by_value = sorted(bars, key=lambda b: float(b["value"]))
        assert all(a["width"] <= b["width"] + 0.01 for a, b in zip(by_value, by_value[1:])), name
    # Each stage once, in its own terms; the sample of kept QA with the seeds they came from.
    assert [s.split(":")[0] for s in seen["stages"]] == report["stages_selected"]
    assert f"kept {kept} rows" in seen["stages"][-1]
    assert len(seen["qa"]) == min(12, kept) and all(q["seeds"] >= 1 and q["missing"] == 0 for q in seen["qa"])
    # Chinese text is set in a CJK font, not boxes.
    assert any("CJK" in f["familyName"] and f["glyphCount"] > 0 for f in cjk_fonts), cjk_fonts
