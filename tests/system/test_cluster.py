"""Cluster mode end to end: every service its own `linksyn serve` process on a real Kafka-protocol broker (Tansu),
the real SmolLM2 behind llama-cpp-python's OpenAI-compatible server shared by all of them, seeds pushed with
`linksyn push`, the dataset in the sink, `linksyn status` showing every service SERVING with its counters; then the
same seeds through the embedded `linksyn run` give the same extraction and graph, and a dataset of the same
lineage."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from linksyn.common.seeds import SeedReader

from tests.system.cluster import (
    LINKSYN,
    PIPELINE,
    SEEDS_FILE,
    Cluster,
    check_ledger,
    read_ledger,
)

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(900)]

MAX_PATHS = 12
DATASET_COLUMNS = {"id", "question", "answer", "rationale", "knowledge_points", "discipline", "difficulty",
                   "source_seed_ids", "path_id", "path_kps", "model", "models", "prompt_version", "mode", "lang",
                   "prompt_tokens", "completion_tokens"}


def embedded_config(cluster: Cluster) -> dict:
    """The cluster's settings for what the embedded run shares with it (extraction, walks, synthesis, sink)."""
    c = cluster.config
    return {
        "extractor": c["extractor"],
        "sampler": {"max_paths": MAX_PATHS, "mode_mix": c["sampler"]["mode_mix"]},
        "synth": c["synth"],
        "sink": {"formats": ["jsonl"]},
    }


def test_cluster_end_to_end_matches_the_embedded_run(openai_server, tmp_path: Path):
    seed_ids = {s.id for s in SeedReader([SEEDS_FILE])}
    with Cluster(tmp_path / "cluster", openai_server.spec, max_paths=MAX_PATHS) as cluster:
        cluster.start()
        pushed = cluster.push(SEEDS_FILE)
        assert pushed == len(seed_ids) == 42
        cluster.wait_finished()

        # `linksyn status` (the CLI, --json): every service SERVING, with counters that moved
        rc, rows = cluster.status_cli()
        assert rc == 0, rows
        by_service = {r["service"]: r for r in rows}
        assert set(by_service) == set(PIPELINE) and all(r["health"] == "SERVING" for r in rows), rows
        topics = cluster.topics

        def counter(service: str, name: str, topic: str) -> float:
            return by_service[service]["counters"].get(f"{name}{{topic={topic}}}", 0.0)

        assert counter("extractor", "consumer_records_in_total", topics["seeds"]) == pushed
        assert counter("graph", "consumer_records_in_total", topics["seed_kps"]) == counter(
            "extractor", "consumer_records_out_total", topics["seed_kps"])
        assert by_service["sampler"]["details"]["paths_emitted"] == MAX_PATHS
        assert by_service["sampler"]["counters"]["sampler_paths_emitted_total{walker=value}"] == MAX_PATHS
        assert counter("synth", "consumer_records_in_total", topics["paths"]) == MAX_PATHS
        assert counter("sink", "consumer_records_in_total", topics["synth_qa"]) == counter(
            "synth", "consumer_records_out_total", topics["synth_qa"])

        ledger = read_ledger(cluster, seed_ids, {})
        check_ledger(ledger, cluster, {})
        assert len(ledger.path_ids) == MAX_PATHS
        assert ledger.annotated_records == len(ledger.annotated)  # no kill, no redelivery: each seed annotated once
        assert len(ledger.annotated) >= 40 and ledger.dataset, (ledger.seeds_dead, cluster.logs())
        for name in reversed(PIPELINE):
            assert cluster.terminate(name) == 0, cluster.services[name].log_tail()
        cluster_graph = cluster_snapshot(cluster)
        print("cluster timings:", cluster.timings)
        check_report_of_cluster_outputs(cluster, tmp_path / "cluster-report.html", len(ledger.dataset))

    # The same seeds through `linksyn run` (one process, in-memory bus).
    cfg = tmp_path / "embedded.yaml"
    cfg.write_text(yaml.safe_dump(embedded_config(cluster)))
    out = tmp_path / "run"
    proc = subprocess.run([LINKSYN, "run", "--seeds", str(SEEDS_FILE), "--out", str(out), "--config", str(cfg),
                           "--timeout", "600"], capture_output=True, text=True, timeout=800)
    report = json.loads((out / "report.json").read_text())
    print("embedded run stages:", {k: v.get("wall_s") for k, v in report["stages"].items()})
    assert proc.returncode == 0, (report.get("error"), proc.stderr[-3000:])
    assert report["seeds_in"] == pushed and report["paths"] == MAX_PATHS
    assert report["annotated"] == len(ledger.annotated)
    assert report["dead_letters"]["by_service"].get("extractor", 0) == len(ledger.seeds_dead)

    from linksyn.common.snapshots.store import SnapshotStore
    from linksyn.graph.analysis import canonical_form

    embedded_graph = SnapshotStore(out / "graph").latest()
    # Same extraction (each seed's KPs, discipline, difficulty are in the graph) and the same graph.
    assert embedded_graph.n_seeds == cluster_graph.n_seeds == len(ledger.annotated)
    assert canonical_form(embedded_graph).differences(canonical_form(cluster_graph)) == []

    rows = [json.loads(line) for f in sorted((out / "dataset" / "data" / "jsonl").glob("*.jsonl"))
            for line in f.read_text().splitlines()]
    assert rows
    for row in rows + ledger.dataset:
        assert set(row) == DATASET_COLUMNS
        assert row["source_seed_ids"] and set(row["source_seed_ids"]) <= ledger.annotated
        assert row["model"] == f"openai:{openai_server.model_name}"
        # Link paths only, but one whose walk finds a single seed falls back to a single-seed mode (issue 16).
        assert (row["mode"] == "link" and len(set(row["source_seed_ids"])) >= 2
                or row["mode"] in ("multi_grade", "hard") and len(row["source_seed_ids"]) == 1), row
        assert set(row["knowledge_points"]) and 1 <= row["difficulty"] <= 5
    assert len({r["id"] for r in rows}) == len(rows)


def check_report_of_cluster_outputs(cluster: Cluster, page: Path, rows: int) -> None:
    """`linksyn report` on what the cluster left (its dataset folder and graph store) shows their figures."""
    from linksyn.report.figures import compute
    from linksyn.report.sources import locate

    dataset, graph = cluster.config["sink"]["output_dir"], cluster.config["graph"]["snapshot_url"]
    proc = subprocess.run([LINKSYN, "report", dataset, "--graph", graph, "--out", str(page)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert page.stat().st_size > 0 and f"report: {page}" in proc.stdout
    f = compute(locate(dataset, graph=graph))
    steps = {b.label: b.value for b in f.funnel.steps}
    assert steps == {"seeds in the graph": cluster_snapshot(cluster).n_seeds, "rows kept": rows}
    assert f.coverage is not None and set(f.coverage.lines) == {"value", "uniform"}
    assert len(f.sample) == min(12, rows) and all(s.found for v in f.sample for s in v.seeds)


def cluster_snapshot(cluster: Cluster):
    from linksyn.common.snapshots.store import SnapshotStore

    return SnapshotStore(cluster.config["graph"]["snapshot_url"]).latest()
