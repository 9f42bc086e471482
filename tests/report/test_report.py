"""`linksyn report` on outputs made by the real parts (tests/report/report_fixtures.py): figures equal to their
sources, a run folder and a cluster's leftovers both work, the page is self-contained and escapes its data."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from linksyn.common.snapshots.store import SnapshotStore
from linksyn.report import write_report
from linksyn.report.coverage import covered_after_each_path
from linksyn.report.figures import SampleSizes, compute, grade_label
from linksyn.report.page import render
from linksyn.report.sources import ReportSourceError, locate
from linksyn.report.summary import stage_line, stage_lines
from typer.testing import CliRunner

from tests.report.report_fixtures import PATHS, ZH_QUESTIONS, make_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    make_run(tmp_path / "run")
    return tmp_path / "run"


def manifest(run: Path) -> dict:
    """The sink's manifest of partition 0 (the fixture's records are all on it)."""
    return json.loads((run / "dataset" / ".sink-state" / "partitions" / "00000" / "manifest.json").read_text())


def test_each_stage_says_what_it_did_in_its_own_terms(run_dir: Path):
    report = json.loads((run_dir / "report.json").read_text())
    lines = stage_lines(report)
    assert [line.split(":")[0] for line in lines] == ["extractor", "graph", "sampler", "synth", "sink"]
    assert lines[0].startswith("extractor: ran in 40.0s, annotated 30 seeds (llm@extract-v1/hf:SmolLM2-135M-Instruct)")
    assert ("; 70 KPs kept (6 merged, 2 ungrounded), 11 dropped: fragment 7, choice_label 4; 1 dead-lettered; "
            "tokens: 1,500 completion + 9,000 prompt") in lines[0]
    assert lines[1] == "graph: ran in 41.0s, 20 knowledge points, 35 edges, 30 seeds, 2 components (snapshot v1)"
    sampler = report["stages"]["sampler"]["details"]
    assert f"emitted {PATHS} paths (value walker), covering {sampler['kp_coverage']:.1%} of 20 knowledge points" in lines[2]
    assert "12 paths -> 11 QA with hf:SmolLM2-135M-Instruct; dropped 5: seed_copy 4, wrong_language 1" in lines[3]
    assert lines[4] == "sink: ran in 95.2s, kept 10 rows; 1 duplicates, 0 near duplicates, 0 leaks (eval overlap); 1 shards"
    # A stage with no phrasing of its own (a new one) says its loop's counts and totals; one that did not run, why.
    assert stage_line("ranker", {"status": "ran", "wall_s": 1.0, "counts": {"records_in": 5, "records_out": 4},
                                 "totals": {"scored": 4, "drop:empty": 1}}) == \
        "ranker: ran in 1.0s, in 5, out 4, failed attempts 0; scored 4; dropped: empty 1"
    assert stage_line("trainer", {"status": "not selected"}) == "trainer: not selected"
    short = {**sampler, "link_paths_short": {"retried": 5, "to_single_seed": 2, "dropped": 1}}
    assert stage_line("sampler", {"status": "ran", "details": short}).endswith(
        "; short link paths: 5 walked again, 2 moved to a single-seed mode, 1 dropped")
    ls = sampler["link_paths_short"]  # the fixture's own sampler's (it walked some short paths again)
    assert lines[2].endswith(f"; short link paths: {ls['retried']} walked again, {ls['to_single_seed']} moved to a "
                             f"single-seed mode, {ls['dropped']} dropped") == any(ls.values())
    assert stage_line("synth", {"status": "ran", "totals": {"paths": 2, "qa": 1, "cost_usd": 0.25}}).endswith(
        "2 paths -> 1 QA")  # no tokens spent: no token clause


def test_figures_of_a_run_are_its_numbers(run_dir: Path):
    report = json.loads((run_dir / "report.json").read_text())
    f = compute(locate(run_dir))
    assert f.kind == "run" and f.status == "ok"
    steps = {b.label: b.value for b in f.funnel.steps}
    assert steps == {"seed rows read": 33, "seeds in": 31, "annotated": 30, "seeds in the graph": 30, "paths": PATHS,
                     "QA synthesized": 11, "rows kept": 10}
    losses = {b.label: b.value for b in f.funnel.losses}
    assert losses == {"synth dropped: seed_copy": 4, "synth dropped: wrong_language": 1, "sink dropped: duplicate": 1,
                      "seed rows rejected: invalid JSON": 1, "seed rows rejected: missing 'question'": 1,
                      "extractor dead-lettered: LLM reply": 1}
    assert f.funnel.losses_total == 9
    report["stages"]["sampler"]["details"]["link_paths_short"] = {"retried": 5, "to_single_seed": 2, "dropped": 3}
    (run_dir / "report.json").write_text(json.dumps(report))
    again = compute(locate(run_dir)).funnel
    assert {b.label: b.value for b in again.losses}["sampler dropped: link path too short"] == 3
    assert again.losses_total == 12
    disc, grade = f.shares
    sampler = report["stages"]["sampler"]["details"]
    for name, attr, key in (("target", disc, "discipline"), ("realised (paths)", disc, "discipline")):
        got = dict(zip(attr.labels, attr.series[name]))
        want = sampler[key]["target" if name == "target" else "realised"]
        assert got == pytest.approx({k: want.get(k, 0.0) for k in got}) and set(want) <= set(got)
    totals = manifest(run_dir)["totals"]
    assert dict(zip(disc.labels, disc.series["dataset (rows kept)"])) == pytest.approx(
        {k: totals["disciplines"].get(k, 0) / totals["records"] for k in disc.labels})
    assert dict(zip(grade.labels, grade.series["dataset (rows kept)"])) == pytest.approx(
        {grade_label(k): v / totals["records"] for k, v in totals["difficulty"].items()})
    # Coverage redrawn on the snapshot ends where the run's own sampler said it was (same snapshot, seed, draw).
    value = f.coverage.lines["value"]
    assert value[0] == (0, 0.0) and value[-1][0] == PATHS
    assert value[-1][1] == pytest.approx(sampler["kp_coverage"]) and f.realised_coverage == (PATHS, sampler["kp_coverage"])
    assert all(a[1] <= b[1] for a, b in zip(value, value[1:]))
    assert f.coverage.lines["uniform"][-1][0] == PATHS
    snap = SnapshotStore(run_dir / "graph").latest()
    assert sum(b.value for b in f.graph.degree_bins) == snap.n_kps
    assert [b.value for b in f.graph.top_kps] == sorted(snap.kp_popularity.tolist(), reverse=True)[: len(f.graph.top_kps)]
    costs = {c.stage: c for c in f.costs}
    assert costs["synth"].tokens == {"prompt_tokens": 12000, "completion_tokens": 2400}
    assert costs["synth"].models == ["hf:SmolLM2-135M-Instruct"] and costs["sink"].wall_s == 95.2
    assert f.model_tokens == [("hf:SmolLM2-135M-Instruct", 10, sum(100 + i for i in range(10)), 500)]


def test_the_sample_shows_each_language_and_the_lineage_of_each_qa(run_dir: Path):
    f = compute(locate(run_dir), SampleSizes(qa=5))
    assert f.sample_of == 10 and len(f.sample) == 5
    assert sorted(v.row["lang"] for v in f.sample) == ["en", "en", "en", "zh", "zh"]  # the minority language too
    snap = SnapshotStore(run_dir / "graph").latest()
    questions = dict(zip(snap.seed_ids.to_list(), snap.seed_question.to_list()))
    for v in f.sample:
        assert [s.id for s in v.seeds] == v.row["source_seed_ids"]
        assert all(s.found and s.question == questions[s.id] for s in v.seeds)
        assert v.path_kps == v.row["path_kps"] and not v.path_kps_derived
    zh = next(v for v in f.sample if v.row["lang"] == "zh")
    assert zh.seeds[0].question in ZH_QUESTIONS
    langs = dict(zip(f.languages.labels, f.languages.series["seeds (graph)"]))
    assert langs == pytest.approx({"en": 26 / 30, "zh": 4 / 30})
    assert {e.lang: e.question for e in f.language_examples}["zh"] == ZH_QUESTIONS[0]


def test_a_clusters_dataset_and_graph_store_are_enough(run_dir: Path, tmp_path: Path):
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    shutil.copytree(run_dir / "dataset", cluster / "sink-volume")
    shutil.copytree(run_dir / "graph", cluster / "graph-volume")
    src = locate(cluster / "sink-volume", graph=str(cluster / "graph-volume"))
    f = compute(src)
    assert f.kind == "outputs" and not f.stage_lines and not f.costs
    assert {b.label: b.value for b in f.funnel.steps} == {"seeds in the graph": 30, "rows kept": 10}
    assert {b.label: b.value for b in f.funnel.losses} == {"sink dropped: duplicate": 1}  # from the sink's manifest
    disc = f.shares[0]
    assert "target (natural mix)" in disc.series and "natural mix" in disc.note
    assert sum(disc.series["target (natural mix)"]) == pytest.approx(1.0)
    assert f.coverage.lines["value"][-1][0] == 10  # as many paths as the dataset's rows came from
    assert len(f.sample) == 10
    # Without the sink's state folder the figures come from the rows; drops are unknown and said to be.
    shutil.rmtree(cluster / "sink-volume" / ".sink-state")
    f = compute(locate(cluster / "sink-volume", graph=str(cluster / "graph-volume")))
    assert {b.label: b.value for b in f.funnel.steps}["rows kept"] == 10 and not f.funnel.losses
    assert any("no sink manifest" in v for _, v in f.facts)
    # A folder with nothing to report on is an error that says what was looked for.
    with pytest.raises(ReportSourceError, match="holds no run \\(report.json\\), dataset"):
        locate(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def test_probes_show_the_latest_and_its_change(run_dir: Path, tmp_path: Path):
    def probe_file(name: str, acc: dict) -> Path:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"model": name, "results": {"mmlu:x": {"buckets": [
            {"discipline": d, "difficulty": g, "n": 10, "accuracy": a} for (d, g), a in acc.items()]}}}))
        return path

    before = probe_file("base", {("physics", 3): 0.2, ("history", 2): 0.5})
    after = probe_file("trained", {("physics", 3): 0.35, ("history", 2): 0.4, ("biology", 4): 0.3})
    f = compute(locate(run_dir, probe_files=[before, after]))
    rows = {(r.discipline, r.grade): (r.latest, r.change) for r in f.probes.rows}
    assert f.probes.latest == "trained" and f.probes.previous == "base"
    assert rows[("physics", 3)] == pytest.approx((0.35, 0.15)) and rows[("history", 2)] == pytest.approx((0.4, -0.1))
    assert rows[("biology", 4)] == (0.3, None)
    page = render(f)
    assert 'class="num up">+15.0 points' in page and 'class="num down">-10.0 points' in page


def test_the_page_is_self_contained_and_escapes_its_data(run_dir: Path):
    report = json.loads((run_dir / "report.json").read_text())
    report["stages"]["synth"]["details"]["generator"] = '<img src="http://evil.example/x.png" onerror="alert(1)">'
    report["seed_sources"] = [{"path": "<script>alert(2)</script>", "format": "jsonl"}]
    (run_dir / "report.json").write_text(json.dumps(report))
    page = write_report(run_dir).read_text(encoding="utf-8")
    tags = Tags()
    tags.feed(page)
    assert not {"script", "img", "iframe", "object", "embed", "link", "image", "use"} & tags.names
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # Nothing is loaded: no attribute points anywhere, no url() in styles.
    assert not [a for a in tags.attrs if a[0] in ("src", "href", "xlink:href", "action", "srcset", "data", "poster")]
    assert not [a for a in tags.attrs if a[0].startswith("on")] and "url(" not in page
    # Every chart is well-formed SVG and names itself.
    charts = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    names = [ET.fromstring(c).get("data-chart") for c in charts]
    assert {"funnel", "losses", "shares-discipline", "shares-grade", "shares-language", "coverage", "degree",
            "top-kps", "stage-time", "stage-tokens"} <= set(names)
    assert '<article class="qa"' in page and 'lang="zh"' in page


class Tags(HTMLParser):
    """Every tag name and attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attrs += attrs


def test_sizes_stay_bounded_on_a_larger_run(tmp_path: Path):
    make_run(tmp_path / "big", n_qa=400)
    page = write_report(tmp_path / "big", sample_qa=6).read_text(encoding="utf-8")
    assert page.count('<article class="qa"') == 6
    assert len(page.encode()) < 200_000


def test_rows_are_read_from_the_shards_holding_them_only(tmp_path: Path):
    from linksyn.report.sources import open_dataset
    from tests.report.report_fixtures import graph_snapshot, write_dataset

    write_dataset(tmp_path / "dataset", graph_snapshot(), n=40, shard_records=10)
    ds = open_dataset(str(tmp_path / "dataset"))
    assert len(ds.shards) == 4 and ds.fmt == "parquet"
    every = ds.table(["id"]).column("id").to_pylist()
    assert [r["id"] for r in ds.rows([35, 2, 12])] == [every[35], every[2], every[12]]
    shutil.rmtree(tmp_path / "dataset" / ".sink-state")  # no manifest: row counts from the shards themselves
    assert [r["id"] for r in open_dataset(str(tmp_path / "dataset")).rows([39, 0])] == [every[39], every[0]]


def test_covered_after_each_path_counts_new_kps_in_path_order():
    kps = np.array([[0, 1, -1], [1, 2, 3], [0, 3, -1], [4, -1, -1]])
    assert covered_after_each_path(kps, 6).tolist() == [2, 4, 4, 5]


def test_the_command_writes_the_page_and_refuses_what_it_cannot_read(run_dir: Path, tmp_path: Path):
    from linksyn.cli import app

    runner = CliRunner()
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["report", str(run_dir), "--out", str(out), "--sample-qa", "3"])
    assert result.exit_code == 0, result.output
    assert f"report: {out}" in result.output and out.read_text().count('<article class="qa"') == 3
    result = runner.invoke(app, ["report", str(_empty(tmp_path))])
    assert result.exit_code == 2 and "holds no run (report.json), dataset" in result.output
    # The page is never written into a dataset folder (it would become part of the dataset).
    result = runner.invoke(app, ["report", str(run_dir / "dataset"), "--graph", str(run_dir / "graph")])
    assert result.exit_code == 2 and "say where the page goes (--out)" in result.output
    assert not (run_dir / "dataset" / "report.html").exists()
